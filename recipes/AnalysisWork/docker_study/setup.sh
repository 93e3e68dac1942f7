# Sourced by login shells in /study (the paper's study image: `cd /study; source setup.sh`):
# the art development environment and this study's build area.
export STUDY_DIR=/study
export FHICL_FILE_PATH=/study/fcl${FHICL_FILE_PATH:+:$FHICL_FILE_PATH}
export CET_PLUGIN_PATH=/study/build/lib${CET_PLUGIN_PATH:+:$CET_PLUGIN_PATH}
mkdir -p /study/build 2>/dev/null || true
