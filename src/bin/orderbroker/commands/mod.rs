//! One module per command: its arguments and what it does.

pub mod alarms;
pub mod appspec;
pub mod calendar;
pub mod carry;
pub mod deploy;
pub mod load;
pub mod network;
pub mod plan;
pub mod preflight;
pub mod readiness;
pub mod rehearse;
pub mod rollback;
pub mod samconfig;
pub mod status;
pub mod tags;
pub mod update_plan;
pub mod warm_pool;
