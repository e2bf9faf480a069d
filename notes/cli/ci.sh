echo "+ cargo build --features cli --bin handoff"
cargo build --features cli --bin handoff
echo "+ cargo test --features cli --test cli"
cargo test --features cli --test cli
