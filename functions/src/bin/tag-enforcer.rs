//! The `tag-enforcer` function's executable (shipped as its `bootstrap`): [`functions::tag_enforcer`].

fn main() -> Result<(), functions::Error> {
    functions::start("tag-enforcer", functions::tag_enforcer::run)
}
