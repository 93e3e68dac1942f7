export FS_SOURCED=1
export FS_SEEN_PROD_NAME="${UPS_PROD_NAME-unset}"
