#!/bin/sh
echo "hello from $(uname -m) (built as $(cat /etc/build-arch))"
