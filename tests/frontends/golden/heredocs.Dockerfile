FROM alpine
ARG NAME=world
RUN <<EOF
echo "hi $NAME"
EOF
RUN <<-"EOT" sh
	echo literal $NAME
	EOT
COPY <<A <<'B' /etc/
a=$NAME
A
b=$NAME
B
RUN python3 <<PY > /out
print(1)
PY
