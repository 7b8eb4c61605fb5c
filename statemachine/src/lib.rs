//! Sluice's Amazon States Language engine: a local Step Functions.
//!
//! The modules follow the language's chapters:
//! - [`model`]: the state machine and its states, parsed from JSON;
//! - [`validate`]: every problem of a definition at once, with its location;
//! - [`path`], [`payload`], [`intrinsics`]: JSONPath, payload templates and intrinsic functions,
//!   evaluated in an [`env`];
//! - `states`: what each state type does (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map);
//! - [`errors`]: error names, Retry and Catch;
//! - [`executor`]: the [`Engine`] that runs executions, parks them on task tokens and resumes them;
//! - [`history`]: execution history events as AWS names them;
//! - [`store`]: where executions wait (in memory or SQLite), with their map runs and leases;
//! - [`objects`]: the S3 port a Distributed Map reads items from and writes results to;
//! - [`task`]: task handlers by resource ARN; [`mock`]: AWS mock-config files;
//! - [`clock`]: injectable time.
//!
//! The commands around it (`sluice validate | exec | conformance`) live in the `sluice` binary.

#[doc(hidden)]
pub mod bench_support;
pub mod clock;
pub mod env;
pub mod errors;
pub mod executor;
pub mod history;
pub mod inspect;
pub mod intrinsics;
pub mod json;
pub mod jsonata;
pub mod mock;
pub mod model;
pub mod objects;
pub mod path;
pub mod payload;
mod states;
pub mod store;
pub mod task;
pub mod test_state;
pub mod validate;

pub use clock::{Clock, ManualClock, SystemClock};
pub use errors::StateFailure;
pub use executor::{
    Engine, EngineError, EngineOptions, ExecutionOutcome, ExecutionReport, PendingTask, StartExecution, execution_arn,
    state_machine_arn,
};
pub use history::{EventType, HistoryEvent};
pub use mock::{MockConfig, MockConfigError, MockedTestCase};
pub use model::StateMachine;
pub use objects::{DirectoryObjectStorage, MemoryObjectStorage, ObjectError, ObjectStorage};
pub use store::{
    ExecutionRecord, ExecutionStatus, ExecutionStore, ExecutionSummary, MemoryExecutionStore, SqliteExecutionStore,
    StoreError,
};
pub use task::{FnHandler, TaskContext, TaskFailure, TaskHandler, TaskRegistry};
pub use validate::{ParseError, ValidationProblem, validate};
