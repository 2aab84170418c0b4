"""bale's own adversarial suites: a Dockerfile fuzzer, a kill loop, concurrency rounds and a
secrets leak scan. tests/fuzz runs short versions; `make fuzz` runs the long ones."""
