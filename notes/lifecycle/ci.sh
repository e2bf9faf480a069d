echo "+ cargo test --test lifecycle"
cargo test --test lifecycle
echo "+ cargo test --test audit"
cargo test --test audit
echo "+ cargo test --test audit --features tracing"
cargo test --test audit --features tracing
echo "+ cargo test --lib --features tracing -- audit replay revocation"
cargo test --lib --features tracing -- audit replay revocation
