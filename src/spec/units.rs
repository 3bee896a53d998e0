//! The small value languages of a spec: durations (`2s`, `10m`), rates (`10/s`,
//! `600/min`) and byte sizes are parsed here, each with a message that says what is
//! accepted.

use std::time::Duration;

/// Parses a duration: a number followed by `ms`, `s`, `m`/`min` or `h`, e.g. `1.5s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => {
            return Err(format!(
                "{text:?} is not a duration; write e.g. 500ms, 2s, 10m, 1h or 90d"
            ));
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 500ms, 2s, 10m, 1h or 90d"))?;
    Duration::try_from_secs_f64(number * seconds_per_unit)
        .map_err(|_| format!("{text:?} is out of range"))
}

/// A number of calls per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate(f64);

impl Rate {
    /// A rate of `per_second` calls a second, which must be positive and finite.
    pub fn per_second(per_second: f64) -> Option<Rate> {
        (per_second.is_finite() && per_second > 0.0).then_some(Rate(per_second))
    }

    /// Calls per second.
    pub fn get(self) -> f64 {
        self.0
    }

    /// This rate shared by `parts` processes.
    pub fn divided(self, parts: u32) -> Rate {
        Rate(self.0 / f64::from(parts.max(1)))
    }

    /// The time between two evenly spaced calls.
    pub fn interval(self) -> Duration {
        Duration::from_secs_f64(1.0 / self.0)
    }
}

/// Parses a rate: `N/s`, `N/min` or `N/h`, with N a positive number such as `0.5`.
pub fn parse_rate(text: &str) -> Result<Rate, String> {
    let bad = || format!("{text:?} is not a rate; write e.g. 10/s, 600/min or 0.5/s");
    let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let count: f64 = count.trim().parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Rate::per_second(count / seconds)
        .ok_or_else(|| format!("{text:?}: a rate must be more than zero"))
}

/// Parses a byte size: a number with an optional unit, `B`, `KB`/`MB` (powers of 1000) or
/// `KiB`/`MiB` (powers of 1024), e.g. `2MiB`, `1.5MB`, `500000`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let bad = || format!("{text:?} is not a size; write e.g. 2MiB, 1.5MB, 500KiB or 2000000");
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let multiplier = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let bytes = (number * multiplier).round();
    if !(1.0..=1e12).contains(&bytes) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86400)));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("2 days").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10/s").unwrap().get(), 10.0);
        assert_eq!(parse_rate("600/min").unwrap().get(), 10.0);
        assert_eq!(parse_rate("0.5/s").unwrap().get(), 0.5);
        assert_eq!(
            parse_rate("10/s").unwrap().interval(),
            Duration::from_millis(100)
        );
        assert!(parse_rate("0/s").is_err());
        assert!(parse_rate("10").is_err());
        assert!(parse_rate("10/day").is_err());
        assert!(parse_rate("x/s").is_err());
    }

    #[test]
    fn byte_sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_bytes("2MiB"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_bytes("1.5 MB"), Ok(1_500_000));
        assert_eq!(parse_bytes("500KiB"), Ok(512_000));
        assert_eq!(parse_bytes("2000000"), Ok(2_000_000));
        assert!(parse_bytes("2GB").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("MiB").is_err());
    }
}
