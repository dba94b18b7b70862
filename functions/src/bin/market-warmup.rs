//! The `market-warmup` function's executable (shipped as its `bootstrap`): [`functions::market_warmup`].

fn main() -> Result<(), functions::Error> {
    functions::start("market-warmup", functions::market_warmup::run)
}
