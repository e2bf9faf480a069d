# Redis-backed replay cache and revocations (feature `redis`): real redis-server, no mocks.
# The tests start and stop their own redis-server on a free 127.0.0.1 port; they FAIL if it
# is not installed, so install it first (Debian package; no service is started).
echo "+ command -v redis-server || (apt-get update && apt-get install -y redis-server)"
command -v redis-server || (apt-get update && apt-get install -y redis-server)
echo "+ cargo test --features redis --test redis"
cargo test --features redis --test redis
echo "+ cargo test --features redis --doc Redis"
cargo test --features redis --doc Redis
echo "+ cargo build --features redis --example fleet --bench redis"
cargo build --features redis --example fleet --bench redis
