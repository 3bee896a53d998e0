//! Templates over a row's columns, such as `reverify-{account_id}` or
//! `images/faces/{account_id}.jpg`. `{{` and `}}` stand for literal braces.

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Column(String),
}

impl Template {
    /// Parses `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!("{text:?}: a {{ is never closed"));
                    }
                    if name.trim().is_empty() || name.contains('{') {
                        return Err(format!(
                            "{text:?}: a placeholder must name a column, as in {{account_id}}"
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Column(name.trim().to_string()));
                }
                '}' => {
                    return Err(format!(
                        "{text:?}: a lone }} (write }}}} for a literal brace)"
                    ));
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The columns the template names, in order.
    pub fn columns(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Column(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// Fills the template, asking `value` for each column.
    pub fn render<'a>(
        &self,
        mut value: impl FnMut(&str) -> Option<&'a str>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Column(name) => match value(name) {
                    Some(v) if !v.is_empty() => out.push_str(v),
                    _ => return Err(format!("column {name} is empty")),
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_columns_and_escaped_braces() {
        let template = Template::parse("t-{id}-{{x}}").unwrap();
        assert_eq!(template.columns().collect::<Vec<_>>(), ["id"]);
        assert_eq!(
            template.render(|c| (c == "id").then_some("42")).unwrap(),
            "t-42-{x}"
        );
    }

    #[test]
    fn an_empty_column_cannot_fill_a_template() {
        let template = Template::parse("{id}.jpg").unwrap();
        assert_eq!(
            template.render(|_| Some("")).unwrap_err(),
            "column id is empty"
        );
    }

    #[test]
    fn rejects_malformed_templates() {
        assert!(Template::parse("a{}b").is_err());
        assert!(Template::parse("a}b").is_err());
        assert!(Template::parse("a{b").is_err());
    }
}
