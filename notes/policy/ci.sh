echo "+ cargo test --test policy"
cargo test --test policy
echo "+ cargo test --features cedar --test policy"
cargo test --features cedar --test policy
echo "+ cargo test --features cedar --test policy_cedar"
cargo test --features cedar --test policy_cedar
echo "+ cargo test --lib policy"
cargo test --lib policy
echo "+ cargo test --features cedar --doc policy"
cargo test --features cedar --doc policy
