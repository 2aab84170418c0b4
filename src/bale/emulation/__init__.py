"""Emulation: which platforms run natively, through binfmt_misc + QEMU, or under proot."""
