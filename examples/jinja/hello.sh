#!/bin/sh
echo "hello from ${APP_ARCH} (${APP_CHANNEL})"
