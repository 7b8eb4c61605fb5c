//! What a path, template or intrinsic function is evaluated against: the value `$` names,
//! the workflow variables, the context object `$$` (built on demand), and the visit's
//! deterministic randomness; and the error an evaluation fails with.

use crate::path::{JsonPath, Root};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why evaluating a path or intrinsic failed at run time (becomes `States.Runtime`).
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError(pub String);

/// Deterministic randomness for `States.UUID` and `States.MathRandom`: seeded per state
/// visit so a resumed execution replays the same values.
pub struct RandomSource {
    state: AtomicU64,
}

impl RandomSource {
    pub fn new(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// splitmix64: tiny, fast and good enough for test identifiers.
    pub fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Builds the context object (`$$`) on demand; most states never read it.
pub trait ContextSource {
    fn context_value(&self) -> Value;
}

impl ContextSource for Value {
    fn context_value(&self) -> Value {
        self.clone()
    }
}

/// What a path or template is evaluated against.
pub struct Env<'a> {
    pub input: &'a Value,
    pub vars: &'a Map<String, Value>,
    pub context: &'a dyn ContextSource,
    pub random: &'a RandomSource,
}

impl<'a> Env<'a> {
    /// The same environment with `$` bound to another value.
    pub fn with_input<'b>(&'b self, input: &'b Value) -> Env<'b> {
        Env {
            input,
            vars: self.vars,
            context: self.context,
            random: self.random,
        }
    }

    /// Selects `path` in this environment; `None` when a definite path finds nothing.
    pub fn resolve(&self, path: &JsonPath) -> Option<Cow<'a, Value>> {
        let base: Cow<'a, Value> = match path.root() {
            Root::Input => Cow::Borrowed(self.input),
            Root::Variable(name) => Cow::Borrowed(self.vars.get(name)?),
            Root::Context => Cow::Owned(self.context.context_value()),
        };
        match base {
            Cow::Borrowed(b) if path.is_definite() => path.select_ref(b).map(Cow::Borrowed),
            base => path.select(&base).map(Cow::Owned),
        }
    }

    /// Like [`Env::resolve`] but a missing value is an error naming the path.
    pub fn require(&self, path: &JsonPath) -> Result<Cow<'a, Value>, EvalError> {
        self.resolve(path).ok_or_else(|| {
            EvalError(format!(
                "Invalid path '{}' : No results for path: {}",
                path.text(),
                path.normalized()
            ))
        })
    }
}
