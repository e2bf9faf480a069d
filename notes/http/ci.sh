# HTTP binding (issue #9): real loopback servers and clients; no services to start.
echo "+ cargo test --features http --test http --test required_intent"
cargo test --features http --test http --test required_intent
echo "+ cargo test --features http --doc http"
cargo test --features http --doc http
echo "+ cargo run --features http --example a2a_over_http"
cargo run --features http --example a2a_over_http
