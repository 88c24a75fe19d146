//! `${{ … }}` as the runner evaluates it, for the forms the workflows use:
//! context properties (`inputs.x`, `matrix.x`, `steps.id.outputs.x`, …),
//! string, number and boolean literals, `!`, `==`, `!=`, `&&`, `||`,
//! parentheses, and the functions `fromJSON`, `hashFiles` and the status
//! checks. Values are JSON values; `&&` and `||` return an operand, as on
//! the runner. A property that does not exist, or a function or form not
//! listed, is an error: an expression never silently becomes `''`.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde_json::Value;

/// What an expression can read.
pub struct Context<'a> {
    /// `{ "inputs": …, "matrix": …, "github": …, "env": …, "steps": …, "needs": …, "runner": … }`.
    pub values: &'a Value,
    /// Whether an earlier step of the job failed (`success()`, `failure()`).
    pub failed: bool,
    /// Where `hashFiles` looks.
    pub workspace: &'a Path,
}

/// `text` with every `${{ expr }}` replaced by its value as a string.
pub fn interpolate(text: &str, ctx: &Context) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after
            .find("}}")
            .with_context(|| format!("`${{{{` without `}}}}` in `{text}`"))?;
        let value = evaluate(&after[..end], ctx)?;
        out.push_str(&to_text(&value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A step's or job's `if:` (with or without `${{ }}`); without a status
/// function it means `success() && (…)`, as on the runner.
pub fn condition(text: &str, ctx: &Context) -> anyhow::Result<bool> {
    let inner = text.trim();
    let inner = inner
        .strip_prefix("${{")
        .and_then(|rest| rest.strip_suffix("}}"))
        .unwrap_or(inner);
    let value = truthy(&evaluate(inner, ctx)?);
    let status = ["always()", "failure()", "cancelled()", "success()"]
        .iter()
        .any(|function| inner.contains(function));
    Ok(value && (status || !ctx.failed))
}

/// The value of one expression.
pub fn evaluate(text: &str, ctx: &Context) -> anyhow::Result<Value> {
    let tokens = tokenize(text).with_context(|| format!("in `${{{{ {} }}}}`", text.trim()))?;
    let mut parser = Parser { tokens, at: 0, ctx };
    let value = parser
        .or()
        .with_context(|| format!("in `${{{{ {} }}}}`", text.trim()))?;
    if parser.at != parser.tokens.len() {
        bail!(
            "`${{{{ {} }}}}`: unexpected `{:?}`",
            text.trim(),
            parser.tokens[parser.at]
        );
    }
    Ok(value)
}

/// As the runner prints a value into text.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Dot,
    Comma,
    Open,
    Close,
    Not,
    Eq,
    Ne,
    And,
    Or,
}

fn tokenize(text: &str) -> anyhow::Result<Vec<Token>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' | '\n' => i += 1,
            '.' => {
                tokens.push(Token::Dot);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '!' if next == Some('=') => {
                tokens.push(Token::Ne);
                i += 2;
            }
            '!' => {
                tokens.push(Token::Not);
                i += 1;
            }
            '=' if next == Some('=') => {
                tokens.push(Token::Eq);
                i += 2;
            }
            '&' if next == Some('&') => {
                tokens.push(Token::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                tokens.push(Token::Or);
                i += 2;
            }
            '\'' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => bail!("a string without its closing quote"),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            text.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            text.push(*c);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(text));
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                tokens.push(Token::Num(text.parse()?));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '-')
                {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => bail!("`{other}` is not part of an expression this rehearsal knows"),
        }
    }
    Ok(tokens)
}

struct Parser<'a, 'c> {
    tokens: Vec<Token>,
    at: usize,
    ctx: &'a Context<'c>,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> anyhow::Result<Value> {
        let mut left = self.and()?;
        while self.eat(&Token::Or) {
            let right = self.and()?;
            left = if truthy(&left) { left } else { right };
        }
        Ok(left)
    }

    fn and(&mut self) -> anyhow::Result<Value> {
        let mut left = self.equality()?;
        while self.eat(&Token::And) {
            let right = self.equality()?;
            left = if truthy(&left) { right } else { left };
        }
        Ok(left)
    }

    fn equality(&mut self) -> anyhow::Result<Value> {
        let left = self.unary()?;
        if self.eat(&Token::Eq) {
            let right = self.unary()?;
            return Ok(Value::Bool(equal(&left, &right)));
        }
        if self.eat(&Token::Ne) {
            let right = self.unary()?;
            return Ok(Value::Bool(!equal(&left, &right)));
        }
        Ok(left)
    }

    fn unary(&mut self) -> anyhow::Result<Value> {
        if self.eat(&Token::Not) {
            return Ok(Value::Bool(!truthy(&self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> anyhow::Result<Value> {
        let token = self
            .peek()
            .cloned()
            .context("the expression ends too early")?;
        self.at += 1;
        match token {
            Token::Open => {
                let value = self.or()?;
                if !self.eat(&Token::Close) {
                    bail!("a `(` without its `)`");
                }
                Ok(value)
            }
            Token::Str(text) => Ok(Value::String(text)),
            Token::Num(n) => Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
            Token::Ident(name) if name == "true" => Ok(Value::Bool(true)),
            Token::Ident(name) if name == "false" => Ok(Value::Bool(false)),
            Token::Ident(name) if name == "null" => Ok(Value::Null),
            Token::Ident(name) if self.peek() == Some(&Token::Open) => {
                self.at += 1;
                let mut args = Vec::new();
                if !self.eat(&Token::Close) {
                    loop {
                        args.push(self.or()?);
                        if self.eat(&Token::Close) {
                            break;
                        }
                        if !self.eat(&Token::Comma) {
                            bail!("`{name}(`: expected `,` or `)`");
                        }
                    }
                }
                self.call(&name, &args)
            }
            Token::Ident(name) => {
                let mut value = self
                    .ctx
                    .values
                    .get(&name)
                    .with_context(|| format!("no context `{name}` here"))?;
                let mut path = name;
                while self.eat(&Token::Dot) {
                    let Some(Token::Ident(property)) = self.peek().cloned() else {
                        bail!("`{path}.` must be followed by a name");
                    };
                    self.at += 1;
                    path = format!("{path}.{property}");
                    value = value
                        .get(&property)
                        .with_context(|| format!("`{path}` does not exist here"))?;
                }
                Ok(value.clone())
            }
            other => bail!("unexpected `{other:?}`"),
        }
    }

    fn call(&self, name: &str, args: &[Value]) -> anyhow::Result<Value> {
        match (name, args) {
            ("always", []) => Ok(Value::Bool(true)),
            ("cancelled", []) => Ok(Value::Bool(false)),
            ("success", []) => Ok(Value::Bool(!self.ctx.failed)),
            ("failure", []) => Ok(Value::Bool(self.ctx.failed)),
            ("fromJSON", [Value::String(text)]) => serde_json::from_str(text)
                .with_context(|| format!("fromJSON: `{text}` is not JSON")),
            ("hashFiles", patterns) if !patterns.is_empty() => {
                hash_files(self.ctx.workspace, patterns)
            }
            _ => bail!(
                "the function `{name}` with {} argument(s) is not one this rehearsal knows",
                args.len()
            ),
        }
    }
}

/// The runner's loose equality: same types compare directly; otherwise
/// both sides as numbers.
fn equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => a == b,
        (a, b) => number(a).is_some_and(|a| number(b).is_some_and(|b| a == b)),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Null => Some(0.0),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => Some(0.0),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A digest of the named files (plain paths, as the workflows use it); a
/// file that does not exist is an error here, where the runner would hash
/// nothing and the key would stop following the file.
fn hash_files(workspace: &Path, patterns: &[Value]) -> anyhow::Result<Value> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for pattern in patterns {
        let Value::String(path) = pattern else {
            bail!("hashFiles takes file names");
        };
        let file = workspace.join(path);
        let bytes = std::fs::read(&file)
            .with_context(|| format!("hashFiles: cannot read `{}`", file.display()))?;
        bytes.hash(&mut hasher);
    }
    Ok(Value::String(format!("{:016x}", hasher.finish())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with<T>(values: Value, failed: bool, body: impl FnOnce(&Context) -> T) -> T {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.lock"), "lock").unwrap();
        let ctx = Context {
            values: &values,
            failed,
            workspace: dir.path(),
        };
        body(&ctx)
    }

    fn values() -> Value {
        json!({
            "inputs": {"artifact-suffix": "", "shards": 2, "plugin-linux": "a.so", "plugin-windows": "a.dll"},
            "matrix": {"leg": "linux", "shard": 1},
            "github": {"event_name": "push", "sha": "abc"},
            "steps": {"plan": {"outputs": {"shards": "[1,2]"}, "outcome": "success"}},
            "needs": {"build": {"result": "success", "outputs": {"shards": "[1,2]"}}}
        })
    }

    #[test]
    fn properties_and_literals_interpolate_as_the_runner_prints_them() {
        with(values(), false, |ctx| {
            assert_eq!(
                interpolate(
                    "plugcheck-shard-${{ matrix.shard }}${{ inputs.artifact-suffix }}",
                    ctx
                )
                .unwrap(),
                "plugcheck-shard-1"
            );
            assert_eq!(interpolate("n=${{ inputs.shards }}", ctx).unwrap(), "n=2");
            assert_eq!(
                interpolate(
                    "${{ matrix.leg == 'linux' && inputs.plugin-linux || inputs.plugin-windows }}",
                    ctx
                )
                .unwrap(),
                "a.so"
            );
            assert_eq!(
                interpolate("${{ github.event_name == 'pull_request' }}", ctx).unwrap(),
                "false"
            );
            assert_eq!(
                interpolate("it''s ${{ 'it''s' }}", ctx).unwrap(),
                "it''s it's"
            );
        });
    }

    #[test]
    fn unknown_properties_functions_and_forms_are_errors_not_empty_strings() {
        with(values(), false, |ctx| {
            for bad in [
                "${{ inputs.no-such-input }}",
                "${{ secrets.TOKEN }}",
                "${{ format('{0}', 1) }}",
                "${{ matrix.leg < 2 }}",
                "${{ (matrix.leg }}",
                "${{ matrix.leg",
            ] {
                let error = interpolate(bad, ctx).unwrap_err();
                assert!(!format!("{error:#}").is_empty(), "{bad}");
            }
        });
    }

    #[test]
    fn from_json_and_hash_files_and_outputs() {
        with(values(), false, |ctx| {
            assert_eq!(
                evaluate("fromJSON(needs.build.outputs.shards)", ctx).unwrap(),
                json!([1, 2])
            );
            let key =
                interpolate("k-${{ hashFiles('Cargo.lock') }}-${{ github.sha }}", ctx).unwrap();
            assert!(
                key.starts_with("k-") && key.ends_with("-abc") && key.len() > 10,
                "{key}"
            );
            assert!(evaluate("hashFiles('missing.lock')", ctx).is_err());
        });
    }

    #[test]
    fn conditions_mean_success_unless_they_ask_for_a_status() {
        with(values(), true, |ctx| {
            assert!(!condition("matrix.leg == 'linux'", ctx).unwrap());
            assert!(condition("always()", ctx).unwrap());
            assert!(condition("failure()", ctx).unwrap());
            assert!(
                condition(
                    "${{ !cancelled() && needs.build.result == 'success' }}",
                    ctx
                )
                .unwrap()
            );
        });
        with(values(), false, |ctx| {
            assert!(condition("matrix.leg == 'linux'", ctx).unwrap());
            assert!(!condition("failure()", ctx).unwrap());
            assert!(condition("${{ steps.plan.outcome != 'failure' }}", ctx).unwrap());
        });
    }
}
