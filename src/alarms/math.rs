//! CloudWatch metric math, for the functions and operators the template's alarms use (pure).
//!
//! Every rule is the CloudWatch user guide's, "Using metric math":
//! - Arithmetic (`+ - * / ^`, unary `-`): "Missing values in a time series are treated as 0. If
//!   the value of a data point causes a function to attempt to divide by zero, the data point is
//!   dropped." So between two series a point exists where EITHER has one (the other read as 0).
//! - Comparisons (`== != <= >= < >`) give 1 or 0: "When comparison operators are used between
//!   two time series, and only one of the time series has a value for a particular time stamp,
//!   the function treats the missing value in the other time series as 0." Logical `AND`/`&&`,
//!   `OR`/`||` combine the same way (the guide's example `(metric1 > 15 AND metric2 > 15)` gives
//!   `1, 0, 0, 0` for `[30, 20, 0, 0]` and `[20, -, 20, -]`).
//! - `IF(condition, trueValue, falseValue)`, section "Using IF expressions": a condition point is
//!   true when non-zero; true with the true series missing -> 0; false with the false series
//!   missing, or no false branch -> the point is dropped; a missing condition point -> dropped.
//!   A scalar condition picks a whole series (no false branch -> an empty series).
//! - `FILL(series, value | REPEAT)`: "Fills the missing values of a time series" over the
//!   query's periods, including the newest one when its data is not published yet ("the latest
//!   data point for the metric [is] always the FILL value", FILL row).
//! - `ABS`, `CEIL`, `FLOOR` apply per point.
//!
//! Not documented and so ASSUMED: operator precedence is the usual one (unary minus, `^`,
//! `* /`, `+ -`, comparisons, `AND`, `OR`); the template's expressions are parenthesised where
//! it would matter.

use std::collections::BTreeMap;

/// A time series over the evaluation range: period start -> value (absent = missing).
pub type Series = BTreeMap<i64, f64>;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    /// Another query's id.
    Id(String),
    Neg(Box<Expr>),
    Binary(Op, Box<Expr>, Box<Expr>),
    /// A function (FILL, IF, ABS, CEIL, FLOOR) and its arguments; `REPEAT` is `Id("REPEAT")`.
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
    And,
    Or,
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Series),
}

/// What can be wrong with an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MathError {
    #[error("expression {expr:?}: {what} at character {at}")]
    Syntax {
        expr: String,
        what: String,
        at: usize,
    },
    #[error("function {0} is not modelled (supported: FILL, IF, ABS, CEIL, FLOOR)")]
    UnknownFunction(String),
    #[error("{0} takes {1}")]
    Arity(String, &'static str),
    #[error("no query with id {0:?}")]
    UnknownId(String),
    #[error("{0}")]
    Type(String),
}

const FUNCTIONS: &[&str] = &["FILL", "IF", "ABS", "CEIL", "FLOOR"];

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Num(f64),
    Word(String),
    Op(Op),
    Minus,
    Open,
    Close,
    Comma,
}

/// An operator or punctuation at the start of `rest`, and its length.
fn punct(rest: &[char]) -> Option<(Token, usize)> {
    let two: String = rest.iter().take(2).collect();
    let op2 = match two.as_str() {
        "==" => Some(Op::Eq),
        "!=" => Some(Op::Ne),
        "<=" => Some(Op::Le),
        ">=" => Some(Op::Ge),
        "&&" => Some(Op::And),
        "||" => Some(Op::Or),
        _ => None,
    };
    if let Some(op) = op2 {
        return Some((Token::Op(op), 2));
    }
    let t = match rest.first()? {
        '<' => Token::Op(Op::Lt),
        '>' => Token::Op(Op::Gt),
        '+' => Token::Op(Op::Add),
        '*' => Token::Op(Op::Mul),
        '/' => Token::Op(Op::Div),
        '^' => Token::Op(Op::Pow),
        '-' => Token::Minus,
        '(' => Token::Open,
        ')' => Token::Close,
        ',' => Token::Comma,
        _ => return None,
    };
    Some((t, 1))
}

fn lex(text: &str) -> Result<Vec<(usize, Token)>, MathError> {
    let err = |what: &str, at: usize| MathError::Syntax {
        expr: text.to_string(),
        what: what.to_string(),
        at,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            out.push((
                start,
                Token::Num(s.parse().map_err(|_| err("bad number", start))?),
            ));
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let w: String = chars[start..i].iter().collect();
            out.push((
                start,
                match w.as_str() {
                    "AND" => Token::Op(Op::And),
                    "OR" => Token::Op(Op::Or),
                    _ => Token::Word(w),
                },
            ));
        } else if let Some((t, len)) = punct(&chars[i..]) {
            out.push((start, t));
            i += len;
        } else {
            return Err(err(&format!("unexpected {c:?}"), start));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<(usize, Token)>,
    pos: usize,
}

/// Binding power of a binary operator (higher binds tighter).
fn power(op: Op) -> u8 {
    match op {
        Op::Or => 1,
        Op::And => 2,
        Op::Eq | Op::Ne | Op::Le | Op::Ge | Op::Lt | Op::Gt => 3,
        Op::Add | Op::Sub => 4,
        Op::Mul | Op::Div => 5,
        Op::Pow => 6,
    }
}

impl Parser<'_> {
    fn err(&self, what: &str) -> MathError {
        let at = self
            .tokens
            .get(self.pos)
            .map(|(a, _)| *a)
            .unwrap_or(self.text.len());
        MathError::Syntax {
            expr: self.text.to_string(),
            what: what.to_string(),
            at,
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn next_op(&self) -> Option<Op> {
        match self.peek()? {
            Token::Op(op) => Some(*op),
            Token::Minus => Some(Op::Sub),
            _ => None,
        }
    }

    fn expr(&mut self, min: u8) -> Result<Expr, MathError> {
        let mut lhs = self.unary()?;
        while let Some(op) = self.next_op() {
            let p = power(op);
            if p < min {
                break;
            }
            self.pos += 1;
            // `^` is right-associative; the others left.
            let rhs = self.expr(if op == Op::Pow { p } else { p + 1 })?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, MathError> {
        if self.peek() == Some(&Token::Minus) {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.expr(power(Op::Pow))?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, MathError> {
        let tok = self
            .peek()
            .cloned()
            .ok_or_else(|| self.err("unexpected end"))?;
        self.pos += 1;
        match tok {
            Token::Num(n) => Ok(Expr::Number(n)),
            Token::Open => {
                let e = self.expr(0)?;
                self.expect(Token::Close, "expected )")?;
                Ok(e)
            }
            Token::Word(w) if self.peek() == Some(&Token::Open) => self.call(w),
            Token::Word(w) => Ok(Expr::Id(w)),
            _ => {
                self.pos -= 1;
                Err(self.err("expected a value"))
            }
        }
    }

    fn call(&mut self, name: String) -> Result<Expr, MathError> {
        if !FUNCTIONS.contains(&name.as_str()) {
            return Err(MathError::UnknownFunction(name));
        }
        self.pos += 1; // (
        let mut args = vec![self.expr(0)?];
        while self.peek() == Some(&Token::Comma) {
            self.pos += 1;
            args.push(self.expr(0)?);
        }
        self.expect(Token::Close, "expected ) or ,")?;
        Ok(Expr::Call(name, args))
    }

    fn expect(&mut self, t: Token, what: &str) -> Result<(), MathError> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }
}

/// Parses an expression; an unknown function or a syntax error is named.
pub fn parse(text: &str) -> Result<Expr, MathError> {
    let mut p = Parser {
        text,
        tokens: lex(text)?,
        pos: 0,
    };
    let e = p.expr(0)?;
    if p.pos != p.tokens.len() {
        return Err(p.err("unexpected text after the expression"));
    }
    Ok(e)
}

/// The ids an expression reads (to order the queries and to check them).
pub fn ids(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Id(id) if id != "REPEAT" => out.push(id.clone()),
        Expr::Neg(a) => ids(a, out),
        Expr::Binary(_, a, b) => {
            ids(a, out);
            ids(b, out);
        }
        Expr::Call(_, args) => args.iter().for_each(|a| ids(a, out)),
        _ => {}
    }
}

fn apply(op: Op, a: f64, b: f64) -> Option<f64> {
    let t = |c: bool| if c { 1.0 } else { 0.0 };
    let v = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div if b == 0.0 => return None,
        Op::Div => a / b,
        Op::Pow => a.powf(b),
        Op::Eq => t(a == b),
        Op::Ne => t(a != b),
        Op::Le => t(a <= b),
        Op::Ge => t(a >= b),
        Op::Lt => t(a < b),
        Op::Gt => t(a > b),
        Op::And => t(a != 0.0 && b != 0.0),
        Op::Or => t(a != 0.0 || b != 0.0),
    };
    v.is_finite().then_some(v)
}

fn binary(op: Op, a: Value, b: Value) -> Value {
    use Value::*;
    match (a, b) {
        (Scalar(x), Scalar(y)) => Scalar(apply(op, x, y).unwrap_or(f64::NAN)),
        (Series(s), Scalar(y)) => Series(
            s.iter()
                .filter_map(|(t, x)| apply(op, *x, y).map(|v| (*t, v)))
                .collect(),
        ),
        (Scalar(x), Series(s)) => Series(
            s.iter()
                .filter_map(|(t, y)| apply(op, x, *y).map(|v| (*t, v)))
                .collect(),
        ),
        (Series(s), Series(r)) => {
            // The union of timestamps, a missing side read as 0 (arithmetic and comparisons).
            let keys: std::collections::BTreeSet<i64> = s.keys().chain(r.keys()).copied().collect();
            Series(
                keys.into_iter()
                    .filter_map(|t| {
                        let x = s.get(&t).copied().unwrap_or(0.0);
                        let y = r.get(&t).copied().unwrap_or(0.0);
                        apply(op, x, y).map(|v| (t, v))
                    })
                    .collect(),
            )
        }
    }
}

/// Evaluates `e` over the evaluation range `timestamps` with the other queries' values.
pub fn eval(
    e: &Expr,
    vars: &BTreeMap<String, Series>,
    timestamps: &[i64],
) -> Result<Value, MathError> {
    Ok(match e {
        Expr::Number(n) => Value::Scalar(*n),
        Expr::Id(id) => Value::Series(
            vars.get(id)
                .cloned()
                .ok_or_else(|| MathError::UnknownId(id.clone()))?,
        ),
        Expr::Neg(a) => binary(Op::Sub, Value::Scalar(0.0), eval(a, vars, timestamps)?),
        Expr::Binary(op, a, b) => {
            binary(*op, eval(a, vars, timestamps)?, eval(b, vars, timestamps)?)
        }
        Expr::Call(name, args) => call(name, args, vars, timestamps)?,
    })
}

fn series(v: Value, what: &str) -> Result<Series, MathError> {
    match v {
        Value::Series(s) => Ok(s),
        Value::Scalar(_) => Err(MathError::Type(format!("{what} must be a time series"))),
    }
}

fn call(
    name: &str,
    args: &[Expr],
    vars: &BTreeMap<String, Series>,
    timestamps: &[i64],
) -> Result<Value, MathError> {
    match (name, args) {
        ("FILL", [s, Expr::Id(r)]) if r == "REPEAT" => {
            let s = series(eval(s, vars, timestamps)?, "FILL's first argument")?;
            let mut last = None;
            let mut out = Series::new();
            for t in timestamps {
                last = s.get(t).copied().or(last);
                if let Some(v) = last {
                    out.insert(*t, v);
                }
            }
            Ok(Value::Series(out))
        }
        ("FILL", [s, with]) => {
            let mut s = series(eval(s, vars, timestamps)?, "FILL's first argument")?;
            let Value::Scalar(v) = eval(with, vars, timestamps)? else {
                return Err(MathError::Type("FILL with a series is not modelled".into()));
            };
            for t in timestamps {
                s.entry(*t).or_insert(v);
            }
            Ok(Value::Series(s))
        }
        ("FILL", _) => Err(MathError::Arity("FILL".into(), "(series, value)")),
        ("IF", [c, a]) => if_(eval(c, vars, timestamps)?, eval(a, vars, timestamps)?, None),
        ("IF", [c, a, b]) => if_(
            eval(c, vars, timestamps)?,
            eval(a, vars, timestamps)?,
            Some(eval(b, vars, timestamps)?),
        ),
        ("IF", _) => Err(MathError::Arity("IF".into(), "2 or 3 arguments")),
        (f @ ("ABS" | "CEIL" | "FLOOR"), [a]) => {
            let g = match f {
                "ABS" => f64::abs,
                "CEIL" => f64::ceil,
                _ => f64::floor,
            };
            Ok(match eval(a, vars, timestamps)? {
                Value::Scalar(x) => Value::Scalar(g(x)),
                Value::Series(s) => Value::Series(s.into_iter().map(|(t, x)| (t, g(x))).collect()),
            })
        }
        (f, _) => Err(MathError::UnknownFunction(f.to_string())),
    }
}

fn if_(cond: Value, yes: Value, no: Option<Value>) -> Result<Value, MathError> {
    let cond = match cond {
        Value::Scalar(c) => {
            return Ok(if c != 0.0 {
                yes
            } else {
                no.unwrap_or(Value::Series(Series::new()))
            })
        }
        Value::Series(s) => s,
    };
    let mut out = Series::new();
    for (t, c) in cond {
        let v = if c != 0.0 {
            match &yes {
                Value::Scalar(x) => Some(*x),
                // True with the true series missing: 0.
                Value::Series(s) => Some(s.get(&t).copied().unwrap_or(0.0)),
            }
        } else {
            match &no {
                Some(Value::Scalar(x)) => Some(*x),
                // False with the false series missing, or no false branch: dropped.
                Some(Value::Series(s)) => s.get(&t).copied(),
                None => None,
            }
        };
        if let Some(v) = v {
            out.insert(t, v);
        }
    }
    Ok(Value::Series(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[v0, v1, ...]` at timestamps 0, 60, ...; `None` = missing.
    fn ts(values: &[Option<f64>]) -> Series {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as i64 * 60, v)))
            .collect()
    }

    fn run(expr: &str, vars: &[(&str, &[Option<f64>])], n: usize) -> Vec<Option<f64>> {
        let vars: BTreeMap<String, Series> =
            vars.iter().map(|(k, v)| (k.to_string(), ts(v))).collect();
        let stamps: Vec<i64> = (0..n as i64).map(|i| i * 60).collect();
        let Value::Series(s) = eval(&parse(expr).unwrap(), &vars, &stamps).unwrap() else {
            panic!("scalar")
        };
        stamps.iter().map(|t| s.get(t).copied()).collect()
    }

    const M1: &[Option<f64>] = &[Some(30.0), Some(20.0), Some(0.0), Some(0.0)];
    const M2: &[Option<f64>] = &[Some(20.0), None, Some(20.0), None];

    #[test]
    fn the_guides_comparison_and_logical_examples() {
        let v = [("metric1", M1), ("metric2", M2)];
        let ones = |xs: &[f64]| xs.iter().map(|x| Some(*x)).collect::<Vec<_>>();
        assert_eq!(
            run("(metric1 < metric2)", &v, 4),
            ones(&[0.0, 0.0, 1.0, 0.0])
        );
        assert_eq!(run("(metric1 >= 30)", &v, 4), ones(&[1.0, 0.0, 0.0, 0.0]));
        assert_eq!(
            run("(metric1 > 15 AND metric2 > 15)", &v, 4),
            ones(&[1.0, 0.0, 0.0, 0.0])
        );
    }

    #[test]
    fn the_guides_if_examples() {
        let m1: &[Option<f64>] = &[Some(1.0), Some(1.0), Some(0.0), Some(0.0), None];
        let m2: &[Option<f64>] = &[Some(30.0), None, Some(0.0), Some(0.0), Some(30.0)];
        let m3: &[Option<f64>] = &[Some(0.0), Some(0.0), Some(20.0), None, Some(20.0)];
        let v = [("metric1", m1), ("metric2", m2), ("metric3", m3)];
        assert_eq!(
            run("IF(metric1, metric2, metric3)", &v, 5),
            vec![Some(30.0), Some(0.0), Some(20.0), None, None]
        );
        assert_eq!(
            run("IF(metric1, 5, metric3)", &v, 5),
            vec![Some(5.0), Some(5.0), Some(20.0), None, None]
        );
        assert_eq!(
            run("IF(metric1, metric2, 5)", &v, 5),
            vec![Some(30.0), Some(0.0), Some(5.0), Some(5.0), None]
        );
        // No false branch: the false points are dropped.
        assert_eq!(
            run("IF(metric1, metric2)", &v, 5),
            vec![Some(30.0), Some(0.0), None, None, None]
        );
    }

    #[test]
    fn arithmetic_reads_missing_as_zero_and_drops_division_by_zero() {
        let a: &[Option<f64>] = &[Some(10.0), None, Some(4.0), None];
        let b: &[Option<f64>] = &[Some(2.0), Some(5.0), None, None];
        let v = [("a", a), ("b", b)];
        assert_eq!(
            run("a - b", &v, 4),
            vec![Some(8.0), Some(-5.0), Some(4.0), None]
        );
        assert_eq!(run("a / b", &v, 4), vec![Some(5.0), Some(0.0), None, None]);
        assert_eq!(
            run("-a * 2 + 1", &v, 4),
            vec![Some(-19.0), None, Some(-7.0), None]
        );
        assert_eq!(run("2 ^ 3 ^ 2 + a * 0", &v, 4)[0], Some(512.0));
    }

    #[test]
    fn fill_fills_every_period_of_the_range_including_the_newest() {
        let a: &[Option<f64>] = &[Some(3.0), None, Some(4.0), None];
        let v = [("a", a)];
        assert_eq!(
            run("FILL(a, 0)", &v, 4),
            vec![Some(3.0), Some(0.0), Some(4.0), Some(0.0)]
        );
        assert_eq!(
            run("FILL(a, REPEAT)", &v, 4),
            vec![Some(3.0), Some(3.0), Some(4.0), Some(4.0)]
        );
    }

    #[test]
    fn bad_expressions_are_named() {
        assert!(
            matches!(parse("SUM(METRICS())"), Err(MathError::UnknownFunction(f)) if f == "SUM")
        );
        assert!(matches!(parse("a +"), Err(MathError::Syntax { .. })));
        assert!(matches!(parse("(a"), Err(MathError::Syntax { .. })));
        assert!(matches!(parse("a $ b"), Err(MathError::Syntax { .. })));
    }
}
