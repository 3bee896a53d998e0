//! The demo data set: an authority data set for the sandbox, an accounts CSV for the
//! pipeline, and the photos both refer to, with a deliberate mix of cases that should pass
//! and fail.
//!
//! [`write_demo`] is the only entry point; the CLI's `samples` command and the tests call
//! it. The same options always give the same bytes, so the committed `samples/` folder can
//! be checked against a fresh run.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::face::{id_card_front, jpeg, portrait};
use super::people::{chinese_name, mobile};
use super::rng::SplitMix64;
use crate::sandbox::idnumber::id_number;

const PEOPLE: u64 = 20;
const STRANGERS: u64 = 21;
const DEALING: u64 = 22;
const DETAILS: u64 = 23;

/// Inline ID card pictures go into a CSV cell, so they are kept small.
const INLINE_SIZE: u32 = 64;
const INLINE_QUALITY: u8 = 70;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How many accounts (default 240).
    pub accounts: usize,
    /// The seed; the same seed gives the same bytes (default 7).
    pub seed: u64,
    /// Side of every picture in pixels (default 112).
    pub image_size: u32,
    /// JPEG quality from 1 to 100 (default 80).
    pub jpeg_quality: u8,
    /// How `id_front` cells that name a file begin: the card folder as seen from the
    /// pipeline spec (default `../samples/images/id_front`, for `pipelines/demo.yaml`).
    pub id_front_prefix: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            accounts: 240,
            seed: 7,
            image_size: 112,
            jpeg_quality: 80,
            id_front_prefix: "../samples/images/id_front".into(),
        }
    }
}

/// What an account is meant to exercise, and so how its verification should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountKind {
    /// Everything matches; the verification should pass.
    Pass,
    /// The face photo shows somebody else; it should fail on the face comparison.
    FaceMismatch,
    /// The real name differs from the registered one; it should fail on the name.
    NameMismatch,
    /// There is no face photo; the row cannot be submitted as it stands.
    MissingPhoto,
    /// A well-formed ID number that the authority has never registered.
    UnknownId,
}

impl AccountKind {
    /// Every kind, in the order the README lists them.
    pub const ALL: [AccountKind; 5] = [
        AccountKind::Pass,
        AccountKind::FaceMismatch,
        AccountKind::NameMismatch,
        AccountKind::MissingPhoto,
        AccountKind::UnknownId,
    ];

    /// The name used in `expected.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Pass => "pass",
            AccountKind::FaceMismatch => "face_mismatch",
            AccountKind::NameMismatch => "name_mismatch",
            AccountKind::MissingPhoto => "missing_photo",
            AccountKind::UnknownId => "unknown_id",
        }
    }

    /// The kind named `name` in `expected.csv`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One generated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    /// The account ID, `A00001` and up.
    pub account_id: String,
    /// What the account exercises.
    pub kind: AccountKind,
    /// The synthetic person the ID number belongs to.
    pub person: u64,
    /// The ID number in the accounts CSV.
    pub id_number: String,
    /// The name in the accounts CSV.
    pub real_name: String,
    /// The mobile in the accounts CSV, if any.
    pub mobile: Option<String>,
    /// The `id_front` cell, if any.
    pub id_front: Option<String>,
    /// The person shown in the face photo, if there is one.
    pub face_of: Option<u64>,
}

/// What [`write_demo`] wrote, account by account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoManifest {
    /// The accounts, in CSV order.
    pub accounts: Vec<DemoAccount>,
}

impl DemoManifest {
    /// How many accounts are of `kind`.
    pub fn count(&self, kind: AccountKind) -> usize {
        self.accounts.iter().filter(|a| a.kind == kind).count()
    }

    /// The kind of the account `account_id`.
    pub fn kind_of(&self, account_id: &str) -> Option<AccountKind> {
        let account = self.accounts.iter().find(|a| a.account_id == account_id);
        account.map(|a| a.kind)
    }
}

/// Writes the demo data set into `dir`, creating it if needed and replacing the files a
/// previous run wrote there.
///
/// The layout, relative to `dir`: `authority.csv` with `authority/{id_number}.jpg`,
/// `accounts.csv`, `images/faces/{account_id}.jpg`, `images/id_front/{account_id}.jpg`,
/// `expected.csv` (the kind of each account) and `README.md`.
pub fn write_demo(dir: &Path, options: &DemoOptions) -> io::Result<DemoManifest> {
    let manifest = plan(options);
    prepare(dir)?;

    write_authority(dir, &manifest, options)?;
    write_photos(dir, &manifest, options)?;
    fs::write(dir.join("accounts.csv"), accounts_csv(&manifest)?)?;
    fs::write(dir.join("expected.csv"), expected_csv(&manifest)?)?;
    fs::write(dir.join("README.md"), readme(&manifest, options))?;

    Ok(manifest)
}

/// Decides every account without touching the disk.
fn plan(options: &DemoOptions) -> DemoManifest {
    let kinds = deal_kinds(options.accounts, options.seed);
    let people = distinct_people(options.accounts, options.seed);
    let mut strangers = SplitMix64::for_purpose(options.seed, STRANGERS);
    let mut details = SplitMix64::for_purpose(options.seed, DETAILS);
    let mut cards = 0;

    let accounts = (0..options.accounts)
        .map(|index| {
            let (kind, person) = (kinds[index], people[index]);
            let mut account = base_account(index, kind, person);
            apply_kind(&mut account, &mut strangers);
            if details.below(100) < 8 {
                account.mobile = None;
            }
            if details.below(2) == 0 {
                account.id_front = Some(id_front_cell(&account, cards, options));
                cards += 1;
            }
            account
        })
        .collect();
    DemoManifest { accounts }
}

/// The kind of each account: fixed shares of each failure, shuffled among the rows.
fn deal_kinds(accounts: usize, seed: u64) -> Vec<AccountKind> {
    let share = |percent: usize| (accounts * percent + 50) / 100;
    let unknown = (accounts / 80).clamp(1, 3);
    let failures = [
        (AccountKind::FaceMismatch, share(10)),
        (AccountKind::NameMismatch, share(5)),
        (AccountKind::MissingPhoto, share(4)),
        (AccountKind::UnknownId, unknown),
    ];
    let mut kinds: Vec<_> = failures
        .iter()
        .flat_map(|&(kind, count)| std::iter::repeat_n(kind, count))
        .collect();
    kinds.resize(accounts, AccountKind::Pass);

    // Fisher-Yates with our own generator, so the mix is stable across rand versions.
    let mut rng = SplitMix64::for_purpose(seed, DEALING);
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.below(i as u64 + 1) as usize);
    }
    kinds
}

/// One person per account, skipping any whose ID number is already taken.
fn distinct_people(accounts: usize, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64::for_purpose(seed, PEOPLE);
    let mut taken = std::collections::HashSet::new();
    let mut people = Vec::with_capacity(accounts);
    while people.len() < accounts {
        let person = rng.next_u64();
        if taken.insert(id_number(person)) {
            people.push(person);
        }
    }
    people
}

/// An account where everything matches.
fn base_account(index: usize, kind: AccountKind, person: u64) -> DemoAccount {
    DemoAccount {
        account_id: format!("A{:05}", index + 1),
        kind,
        person,
        id_number: id_number(person),
        real_name: chinese_name(person),
        mobile: Some(mobile(person)),
        id_front: None,
        face_of: Some(person),
    }
}

/// Spoils the account the way its kind asks.
fn apply_kind(account: &mut DemoAccount, strangers: &mut SplitMix64) {
    match account.kind {
        AccountKind::FaceMismatch => account.face_of = Some(strangers.next_u64()),
        AccountKind::NameMismatch => account.real_name = other_name(&account.real_name, strangers),
        AccountKind::MissingPhoto => account.face_of = None,
        AccountKind::Pass | AccountKind::UnknownId => {}
    }
}

/// A name that differs from `name`.
fn other_name(name: &str, strangers: &mut SplitMix64) -> String {
    loop {
        let candidate = chinese_name(strangers.next_u64());
        if candidate != name {
            return candidate;
        }
    }
}

/// The `id_front` cell of the `card`-th account that has one.
///
/// Most cells name a file; a few carry the picture inline, once as a data URL and once as
/// `base64://`, so that every local form a user's CSV may hold turns up in the demo.
fn id_front_cell(account: &DemoAccount, card: usize, options: &DemoOptions) -> String {
    let inline = || {
        let small = id_card_front(account.person, INLINE_SIZE);
        STANDARD.encode(jpeg(&small, INLINE_QUALITY))
    };
    match card % 30 {
        5 => format!("data:image/jpeg;base64,{}", inline()),
        20 => format!("base64://{}", inline()),
        _ => format!("{}/{}.jpg", options.id_front_prefix, account.account_id),
    }
}

/// Creates the folders and removes the pictures of a previous run.
///
/// Only JPEG files in the generated folders are removed, so pointing `--out` at the wrong
/// place cannot cost anything but pictures.
fn prepare(dir: &Path) -> io::Result<()> {
    for folder in ["authority", "images/faces", "images/id_front"] {
        let folder = dir.join(folder);
        fs::create_dir_all(&folder)?;
        for entry in fs::read_dir(&folder)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "jpg") {
                fs::remove_file(path)?;
            }
        }
    }
    Ok(())
}

/// Writes `authority.csv` and the registered portraits of everyone but the unknown IDs.
fn write_authority(dir: &Path, manifest: &DemoManifest, options: &DemoOptions) -> io::Result<()> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["id_number", "name", "portrait"])?;
    for account in &manifest.accounts {
        if account.kind == AccountKind::UnknownId {
            continue;
        }
        let file = format!("authority/{}.jpg", account.id_number);
        let picture = portrait(account.person, 0, options.image_size);
        fs::write(dir.join(&file), jpeg(&picture, options.jpeg_quality))?;
        // The registered name is the person's own, whatever the account claims.
        let name = chinese_name(account.person);
        csv.write_record([account.id_number.as_str(), name.as_str(), file.as_str()])?;
    }
    fs::write(
        dir.join("authority.csv"),
        csv.into_inner().map_err(|e| e.into_error())?,
    )
}

/// Writes each account's face photo and ID card picture, where it has them.
fn write_photos(dir: &Path, manifest: &DemoManifest, options: &DemoOptions) -> io::Result<()> {
    let size = options.image_size;
    for account in &manifest.accounts {
        if let Some(face_of) = account.face_of {
            // New photos of the person: variants 1 to 8, never the registered portrait.
            let variant = 1 + (face_of % 8) as u32;
            let file = dir.join(format!("images/faces/{}.jpg", account.account_id));
            fs::write(
                file,
                jpeg(&portrait(face_of, variant, size), options.jpeg_quality),
            )?;
        }
        if account
            .id_front
            .as_deref()
            .is_some_and(|cell| cell.ends_with(".jpg"))
        {
            let file = dir.join(format!("images/id_front/{}.jpg", account.account_id));
            let card = id_card_front(account.person, size);
            fs::write(file, jpeg(&card, options.jpeg_quality))?;
        }
    }
    Ok(())
}

/// The accounts CSV: `account_id,real_name,id_number,mobile,id_front`.
fn accounts_csv(manifest: &DemoManifest) -> io::Result<Vec<u8>> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["account_id", "real_name", "id_number", "mobile", "id_front"])?;
    for a in &manifest.accounts {
        let mobile = a.mobile.as_deref().unwrap_or("");
        let id_front = a.id_front.as_deref().unwrap_or("");
        let cells: [&str; 5] = [&a.account_id, &a.real_name, &a.id_number, mobile, id_front];
        csv.write_record(cells)?;
    }
    csv.into_inner().map_err(|e| e.into_error())
}

/// The expected outcomes: `account_id,kind`.
fn expected_csv(manifest: &DemoManifest) -> io::Result<Vec<u8>> {
    let mut csv = csv::Writer::from_writer(Vec::new());
    csv.write_record(["account_id", "kind"])?;
    for account in &manifest.accounts {
        csv.write_record([account.account_id.as_str(), account.kind.as_str()])?;
    }
    csv.into_inner().map_err(|e| e.into_error())
}

/// The README that describes the folder, with this run's counts.
fn readme(manifest: &DemoManifest, options: &DemoOptions) -> String {
    let mut text = String::from(README_HEAD);
    let cards = manifest
        .accounts
        .iter()
        .filter(|a| a.id_front.is_some())
        .count();
    let mobiles = manifest
        .accounts
        .iter()
        .filter(|a| a.mobile.is_some())
        .count();
    let _ = writeln!(text, "| kind | accounts |\n|---|---|");
    for kind in AccountKind::ALL {
        let _ = writeln!(text, "| `{}` | {} |", kind.as_str(), manifest.count(kind));
    }
    let _ = writeln!(
        text,
        "\n{} accounts in all; {mobiles} have a mobile and {cards} an `id_front`.\n",
        manifest.accounts.len()
    );
    let _ = write!(
        text,
        "{}",
        README_TAIL
            .replace("{accounts}", &options.accounts.to_string())
            .replace("{seed}", &options.seed.to_string())
    );
    text
}

const README_HEAD: &str = "\
# Demo data set

Synthetic people for the demo pipeline (`pipelines/demo.yaml`) and the sandbox. Nobody here
is real: names, ID numbers (valid GB 11643 check digits), mobiles and faces are generated by
`cloudauth_batch::sandbox::synthetic::write_demo`.

## Files

- `authority.csv` (`id_number,name,portrait`) with `authority/{id_number}.jpg`: the
  sandbox's stand-in for the government records. `portrait` is relative to the CSV.
- `accounts.csv` (`account_id,real_name,id_number,mobile,id_front`): the pipeline's input.
  `mobile` is empty on some rows, `id_front` on about half. Most `id_front` cells name a file
  relative to `pipelines/`, such as `../samples/images/id_front/A00001.jpg`; a few hold the
  picture inline as a `data:image/jpeg;base64,` URL or as `base64://`.
- `images/faces/{account_id}.jpg`: the face photo of each account, a new photo of the
  person (not the registered portrait). Missing on purpose for `missing_photo` accounts.
- `images/id_front/{account_id}.jpg`: the portrait side of the ID card, for the rows that
  name one.
- `expected.csv` (`account_id,kind`): what each account is meant to exercise.

## The mix of cases

- `pass`: everything matches; the face scores 90 or more against the registered portrait.
- `face_mismatch`: the face photo shows somebody else and scores below 60.
- `name_mismatch`: `real_name` differs from the registered name.
- `missing_photo`: no file in `images/faces/`.
- `unknown_id`: a valid ID number that `authority.csv` does not contain.

";

const README_TAIL: &str = "\
## Regenerating

The files are a pure function of the options, so regenerating gives the same bytes:

```sh
cloudauth-batch samples --out samples --accounts {accounts} --seed {seed}
```

or, from the repository, `cargo test --lib -- --ignored regenerate_committed_samples`.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::authority::{Authority, FaceHash};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    /// The committed demo folder.
    fn committed() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
    }

    /// Every file under `dir`, by relative path, with its bytes.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(folder) = pending.pop() {
            for entry in fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(dir).unwrap().to_path_buf();
                    files.insert(relative, fs::read(&path).unwrap());
                }
            }
        }
        files
    }

    /// The expected kinds from a demo folder's `expected.csv`.
    fn expected(dir: &Path) -> Vec<(String, AccountKind)> {
        let mut reader = csv::Reader::from_path(dir.join("expected.csv")).unwrap();
        let rows = reader.records().map(|row| row.unwrap());
        rows.map(|row| (row[0].to_string(), AccountKind::parse(&row[1]).unwrap()))
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let options = DemoOptions {
            image_size: 40,
            ..DemoOptions::default()
        };
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(
            write_demo(a.path(), &options).unwrap(),
            write_demo(b.path(), &options).unwrap()
        );
        assert_eq!(snapshot(a.path()), snapshot(b.path()));

        let other = DemoOptions { seed: 8, ..options };
        let c = tempfile::tempdir().unwrap();
        write_demo(c.path(), &other).unwrap();
        assert_ne!(
            snapshot(a.path())[Path::new("accounts.csv")],
            snapshot(c.path())[Path::new("accounts.csv")]
        );
    }

    #[test]
    fn the_mix_of_cases_has_the_planned_shares() {
        let manifest = plan(&DemoOptions::default());
        let counts: Vec<_> = AccountKind::ALL.map(|kind| manifest.count(kind)).into();
        assert_eq!(counts, [191, 24, 12, 10, 3]);

        let cells: Vec<_> = manifest
            .accounts
            .iter()
            .filter_map(|a| a.id_front.as_deref())
            .collect();
        assert!((96..=144).contains(&cells.len()), "{} cards", cells.len());
        assert!(
            cells
                .iter()
                .any(|c| c.starts_with("data:image/jpeg;base64,"))
        );
        assert!(cells.iter().any(|c| c.starts_with("base64://")));
        assert!(
            cells
                .iter()
                .any(|c| c.starts_with("../samples/images/id_front/A"))
        );
        let without_mobile = manifest
            .accounts
            .iter()
            .filter(|a| a.mobile.is_none())
            .count();
        assert!(
            (5..=40).contains(&without_mobile),
            "{without_mobile} without a mobile"
        );
    }

    #[test]
    fn a_run_replaces_the_pictures_of_a_larger_one() {
        let dir = tempfile::tempdir().unwrap();
        let small = |accounts| DemoOptions {
            accounts,
            image_size: 32,
            ..DemoOptions::default()
        };
        write_demo(dir.path(), &small(40)).unwrap();
        write_demo(dir.path(), &small(20)).unwrap();
        let faces = fs::read_dir(dir.path().join("images/faces"))
            .unwrap()
            .count();
        assert!(faces <= 20, "{faces} faces left");
    }

    #[test]
    fn the_committed_samples_are_up_to_date() {
        let fresh = tempfile::tempdir().unwrap();
        write_demo(fresh.path(), &DemoOptions::default()).unwrap();
        let committed = snapshot(&committed());
        // Only the generated files: the folder may hold others, such as notes.
        for (path, bytes) in snapshot(fresh.path()) {
            let stale = committed.get(&path) != Some(&bytes);
            assert!(
                !stale,
                "samples/{} differs from a fresh run",
                path.display()
            );
        }
    }

    #[test]
    fn the_committed_samples_score_as_their_kinds_say() {
        let dir = committed();
        let authority = Authority::load(&dir.join("authority.csv")).unwrap();
        let accounts = csv::Reader::from_path(dir.join("accounts.csv"))
            .unwrap()
            .into_records();
        for (row, (account_id, kind)) in accounts.zip(expected(&dir)) {
            let row = row.unwrap();
            assert_eq!(&row[0], account_id);
            let face = fs::read(dir.join(format!("images/faces/{account_id}.jpg")));
            let record = authority.get(&row[2]);
            match kind {
                AccountKind::MissingPhoto => assert!(face.is_err(), "{account_id}"),
                AccountKind::UnknownId => assert!(record.is_none(), "{account_id}"),
                AccountKind::NameMismatch => assert_ne!(record.unwrap().name, &row[1]),
                AccountKind::Pass | AccountKind::FaceMismatch => {
                    let record = record.unwrap();
                    assert_eq!(record.name, &row[1], "{account_id}");
                    let score = record
                        .portrait
                        .score(&FaceHash::of_image(&face.unwrap()).unwrap());
                    let expected = if kind == AccountKind::Pass {
                        score >= 90.0
                    } else {
                        score < 60.0
                    };
                    assert!(expected, "{account_id} ({}) scores {score}", kind.as_str());
                }
            }
        }
    }

    /// Rewrites `samples/` with the default options; run by hand after changing the
    /// generator, then commit the result.
    #[test]
    #[ignore = "rewrites the committed samples/ folder"]
    fn regenerate_committed_samples() {
        write_demo(&committed(), &DemoOptions::default()).unwrap();
    }
}
