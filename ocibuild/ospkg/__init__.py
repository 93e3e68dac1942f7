"""OS packages without RUN: yum and apt repository indexes, rpm and Debian version ordering,
dependency resolution, rpm/cpio and .deb payloads, dpkg's database, account files, and the
record of installed packages. The `rpm`, `deb` and `user` layer sources are built on these."""
