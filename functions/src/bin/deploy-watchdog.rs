//! The `deploy-watchdog` function's executable (shipped as its `bootstrap`): [`functions::deploy_watchdog`].

fn main() -> Result<(), functions::Error> {
    functions::start("deploy-watchdog", functions::deploy_watchdog::run)
}
