//! The JSONPath parser: a small recursive-descent reader over the path text.

use super::{CompareOp, FilterExpr, Operand, Root, Segment};
use serde_json::Value;

/// A path that cannot be parsed, with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid JSONPath '{path}' at offset {offset}: {reason}")]
pub struct PathSyntaxError {
    pub path: String,
    pub offset: usize,
    pub reason: String,
}

/// Filters nest; this bounds recursion so hostile input cannot exhaust the stack.
const MAX_FILTER_DEPTH: usize = 32;

pub(super) fn parse_path(text: &str) -> Result<(Root, Vec<Segment>), PathSyntaxError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    let root = p.root()?;
    let segments = p.segments(false)?;
    if p.pos != p.bytes.len() {
        return Err(p.error("unexpected character"));
    }
    Ok((root, segments))
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, reason: &str) -> PathSyntaxError {
        PathSyntaxError {
            path: self.text.to_string(),
            offset: self.pos,
            reason: reason.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), PathSyntaxError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{}'", b as char)))
        }
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn root(&mut self) -> Result<Root, PathSyntaxError> {
        if !self.eat(b'$') {
            return Err(self.error("a path must start with '$'"));
        }
        if self.eat(b'$') {
            return Ok(Root::Context);
        }
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                let start = self.pos;
                while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_') {
                    self.pos += 1;
                }
                Ok(Root::Variable(self.text[start..self.pos].to_string()))
            }
            _ => Ok(Root::Input),
        }
    }

    fn segments(&mut self, in_filter: bool) -> Result<Vec<Segment>, PathSyntaxError> {
        let mut segments = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.pos += 1;
                    if self.eat(b'.') {
                        if self.eat(b'*') {
                            segments.push(Segment::DeepScan(None));
                        } else {
                            let name = self.dotted_name(in_filter)?;
                            segments.push(Segment::DeepScan(Some(name)));
                        }
                    } else if self.eat(b'*') {
                        segments.push(Segment::Wildcard);
                    } else {
                        let name = self.dotted_name(in_filter)?;
                        segments.push(Segment::Name(name));
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    segments.push(self.bracket()?);
                }
                _ => return Ok(segments),
            }
        }
    }

    fn dotted_name(&mut self, in_filter: bool) -> Result<String, PathSyntaxError> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            let stop =
                b == b'.' || b == b'[' || (in_filter && b" \t)=!<>&|,".contains(&b)) || (!in_filter && b == b' ');
            if stop {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("expected a field name"));
        }
        Ok(self.text[start..self.pos].to_string())
    }

    fn bracket(&mut self) -> Result<Segment, PathSyntaxError> {
        self.skip_spaces();
        let segment = match self.peek() {
            Some(b'*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some(q @ (b'\'' | b'"')) => {
                let mut names = vec![self.quoted(q)?];
                self.skip_spaces();
                while self.eat(b',') {
                    self.skip_spaces();
                    let q = self.peek().ok_or_else(|| self.error("expected a quoted name"))?;
                    names.push(self.quoted(q)?);
                    self.skip_spaces();
                }
                if names.len() == 1 {
                    Segment::Name(names.remove(0))
                } else {
                    Segment::Names(names)
                }
            }
            Some(b'?') => {
                self.pos += 1;
                self.skip_spaces();
                self.expect(b'(')?;
                let expr = self.filter_or()?;
                self.skip_spaces();
                self.expect(b')')?;
                Segment::Filter(Box::new(expr))
            }
            Some(b) if b == b'-' || b == b':' || b.is_ascii_digit() => self.indices()?,
            _ => return Err(self.error("unexpected character in brackets")),
        };
        self.skip_spaces();
        self.expect(b']')?;
        Ok(segment)
    }

    fn quoted(&mut self, quote: u8) -> Result<String, PathSyntaxError> {
        if !self.eat(quote) {
            return Err(self.error("expected a quoted name"));
        }
        let mut out = String::new();
        let mut start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quoted name")),
                Some(b'\\') if self.peek_at(1) == Some(quote) => {
                    out.push_str(&self.text[start..self.pos]);
                    out.push(quote as char);
                    self.pos += 2;
                    start = self.pos;
                }
                Some(b) if b == quote => {
                    out.push_str(&self.text[start..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    fn integer(&mut self) -> Result<Option<i64>, PathSyntaxError> {
        self.skip_spaces();
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        while matches!(self.peek(), Some(b) if b.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        let n = self.text[start..self.pos]
            .parse::<i64>()
            .map_err(|_| self.error("invalid integer"))?;
        self.skip_spaces();
        Ok(Some(n))
    }

    fn indices(&mut self) -> Result<Segment, PathSyntaxError> {
        let first = self.integer()?;
        if self.eat(b':') {
            let end = self.integer()?;
            let step = if self.eat(b':') {
                self.integer()?.unwrap_or(1)
            } else {
                1
            };
            if step <= 0 {
                return Err(self.error("slice step must be positive"));
            }
            return Ok(Segment::Slice {
                start: first,
                end,
                step,
            });
        }
        let first = first.ok_or_else(|| self.error("expected an index"))?;
        let mut all = vec![first];
        while self.eat(b',') {
            all.push(self.integer()?.ok_or_else(|| self.error("expected an index"))?);
        }
        Ok(if all.len() == 1 {
            Segment::Index(first)
        } else {
            Segment::Indices(all)
        })
    }

    fn nest(&mut self) -> Result<(), PathSyntaxError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.error("filter nested too deeply"));
        }
        Ok(())
    }

    fn filter_or(&mut self) -> Result<FilterExpr, PathSyntaxError> {
        self.nest()?;
        let mut parts = vec![self.filter_and()?];
        loop {
            self.skip_spaces();
            if self.bytes[self.pos..].starts_with(b"||") {
                self.pos += 2;
                parts.push(self.filter_and()?);
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            FilterExpr::Or(parts)
        })
    }

    fn filter_and(&mut self) -> Result<FilterExpr, PathSyntaxError> {
        let mut parts = vec![self.filter_unary()?];
        loop {
            self.skip_spaces();
            if self.bytes[self.pos..].starts_with(b"&&") {
                self.pos += 2;
                parts.push(self.filter_unary()?);
            } else {
                break;
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            FilterExpr::And(parts)
        })
    }

    fn filter_unary(&mut self) -> Result<FilterExpr, PathSyntaxError> {
        self.skip_spaces();
        if self.peek() == Some(b'!') && self.peek_at(1) != Some(b'=') {
            self.pos += 1;
            self.nest()?;
            let inner = self.filter_unary()?;
            self.depth -= 1;
            return Ok(FilterExpr::Not(Box::new(inner)));
        }
        if self.eat(b'(') {
            let inner = self.filter_or()?;
            self.skip_spaces();
            self.expect(b')')?;
            return Ok(inner);
        }
        let left = self.operand()?;
        self.skip_spaces();
        let op = match (self.peek(), self.peek_at(1)) {
            (Some(b'='), Some(b'=')) => Some((CompareOp::Eq, 2)),
            (Some(b'!'), Some(b'=')) => Some((CompareOp::Ne, 2)),
            (Some(b'<'), Some(b'=')) => Some((CompareOp::Le, 2)),
            (Some(b'>'), Some(b'=')) => Some((CompareOp::Ge, 2)),
            (Some(b'<'), _) => Some((CompareOp::Lt, 1)),
            (Some(b'>'), _) => Some((CompareOp::Gt, 1)),
            _ => None,
        };
        match op {
            Some((op, width)) => {
                self.pos += width;
                let right = self.operand()?;
                Ok(FilterExpr::Compare(left, op, right))
            }
            None => Ok(FilterExpr::Exists(left)),
        }
    }

    fn operand(&mut self) -> Result<Operand, PathSyntaxError> {
        self.skip_spaces();
        match self.peek() {
            Some(b'@') => {
                self.pos += 1;
                Ok(Operand::Current(self.segments(true)?))
            }
            Some(b'$') => {
                self.pos += 1;
                Ok(Operand::Root(self.segments(true)?))
            }
            Some(q @ (b'\'' | b'"')) => Ok(Operand::Literal(Value::String(self.quoted(q)?))),
            Some(b) if b == b'-' || b.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                while matches!(self.peek(), Some(b) if b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E') {
                    self.pos += 1;
                }
                let text = &self.text[start..self.pos];
                serde_json::from_str::<serde_json::Number>(text)
                    .map(|n| Operand::Literal(Value::Number(n)))
                    .map_err(|_| self.error("invalid number"))
            }
            _ => {
                for (word, value) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.bytes[self.pos..].starts_with(word.as_bytes()) {
                        self.pos += word.len();
                        return Ok(Operand::Literal(value));
                    }
                }
                Err(self.error("expected a filter operand"))
            }
        }
    }
}
