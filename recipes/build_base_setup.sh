# Login-shell setup of the UPS build environment (the paper's build_base_setup.sh, sourced
# from /etc/profile): the products area and the compiler of the e9 qualifier, GCC 4.9.3.
if [ -f /products/setup ]; then
  . /products/setup
  setup gcc v4_9_3
fi
