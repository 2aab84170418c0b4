# syntax=docker/dockerfile:1
FROM debian:bookworm-slim
ARG GREETING=hello
RUN <<EOT bash
  set -e
  apt-get update
  apt-get install -y --no-install-recommends vim
  rm -rf /var/lib/apt/lists/*
EOT
RUN <<'EOF'
#!/usr/bin/env python3
import platform
print("running on", platform.machine())
EOF
COPY <<-EOF /etc/motd
	${GREETING} from the heredoc
	EOF
COPY <<conf1 <<conf2 /etc/app/
a=1
conf1
b=2
conf2
RUN <<EOF1 cat > /tmp/one && <<EOF2 cat > /tmp/two
first
EOF1
second
EOF2
CMD ["cat", "/etc/motd"]
