echo "+ cargo test --test review"
cargo test --test review
