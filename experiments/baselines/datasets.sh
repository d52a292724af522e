# The study's seven datasets as Hydra overrides, one sweep each; sourced by the scripts here.
DATASETS=(
  "data=asd data.entity=omi-1,omi-2,omi-3,omi-4"
  "data=case2"
  "data=corr_breaks"
  "data=corr_breaks data.correlated.channels=100 data.correlated.groups=20 data.name=corr-breaks-k100"
)
