export FS_SOURCED=1
false
