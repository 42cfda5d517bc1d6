#!/usr/bin/env bash
# The release evaluation of the protocol (docs/evaluation.md): both cells, the evaluation faults of
# `mcf inject`, >= 2 h of normal running per cell and the baselines, on seeds made for the release.
#   scripts/release_eval.sh WORKDIR [STAGE ...]
# Stages, in the default order: yumi_model faults score yumi_normal ur5e_normal sweep baselines table;
# faults, score and baselines do both cells, ur5e_faults/yumi_faults and so on one (a release that
# changes only what training does leaves the shipped UR5e model, and its scores, as they were).
# A finished step leaves STEP.done beside its output and is skipped next time, so two stages can run
# at once in two shells (faults and yumi_model, say) and an interrupted run continues where it stopped.
# About 5 CPU-hours on a 2-core machine; the UR5e's 2 h of normal running is most of it (its simulator
# renders 30 frames/s in software, about 1.5x real time here), so it comes in 15 min pieces: a run cut
# short loses one piece at most.
set -euo pipefail
work=$(realpath -m "${1:?usage: $0 WORKDIR [STAGE ...]}"); shift
stages=${*:-yumi_model faults score yumi_normal ur5e_normal sweep baselines table}
mkdir -p "$work"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOG_DIR="$work/ros_log"
repo=$(cd "$(dirname "$0")/.." && pwd)

# The seeds of this release; a release after another choice of the detector takes new ones.
# Release 5 (the YuMi's simulator keeps one arm configuration); release 4 took 1100-1113 for the YuMi,
# release 3 1000-1020, release 2's script: git show 8cc1900:scripts/release_eval.sh
YUMI_TRAIN=1200 YUMI_NORMAL="1201 1202" YUMI_FAULTS="1209 1211" YUMI_SWEEP=1213
UR5E_NORMAL="1103 1104 1115 1116 1117 1118 1119 1120" UR5E_FAULTS="1105 1107"
YUMI_NORMAL_S=3600 UR5E_NORMAL_S=900
UR5E_PHYSICAL=collision,heavy_payload,dropped_payload,slow_motion,joint_brake,foreign_object,wrong_waypoint
YUMI_PHYSICAL=collision,heavy_payload,slow_motion,joint_brake,foreign_object,wrong_waypoint

step() {  # OUTPUT COMMAND...: run COMMAND unless OUTPUT.done says it finished
    [ -e "$1.done" ] && return 0
    echo "$(date +%T) ${*:2}" >&2
    rm -rf "$1"
    "${@:2}"
    touch "$1.done"
}
sim() { step "$work/$1" mcf sim --out "$work/$1" "${@:2}"; }
evaluate() {  # MODEL BAG REPORT [--baselines]
    step "$work/$3" mcf eval --model "$work/$1" --bag "$work/$2" --report "$work/$3" "${@:4}"
}
fault_bags() {  # CELL PHYSICAL DURATION SEED...
    local cell=$1 physical=$2 duration=$3 seed; shift 3
    for seed in "$@"; do
        sim "${cell}_physical_s$seed" --cell "$cell" --duration "$duration" --seed "$seed" --faults "$physical"
        step "$work/${cell}_faults_s$seed" mcf inject "$work/${cell}_physical_s$seed" \
            --out "$work/${cell}_faults_s$seed" --seed $((seed + 1))
    done
}

expanded=()
for stage in $stages; do
    case $stage in
    faults | score | baselines) expanded+=("ur5e_$stage" "yumi_$stage") ;;
    *) expanded+=("$stage") ;;
    esac
done
for stage in "${expanded[@]}"; do
    case $stage in
    yumi_model)
        sim yumi_train_s$YUMI_TRAIN --cell yumi --duration 1200 --seed $YUMI_TRAIN
        step "$work/yumi_cell.mcf" mcf train --bag "$work/yumi_train_s$YUMI_TRAIN" --out "$work/yumi_cell.mcf" ;;
    ur5e_faults) fault_bags ur5e $UR5E_PHYSICAL 340 $UR5E_FAULTS ;;
    yumi_faults) fault_bags yumi $YUMI_PHYSICAL 300 $YUMI_FAULTS ;;
    ur5e_score)
        # The UR5e cell's model is the shipped one, trained on seed 100 (models/README.md).
        step "$work/ur5e_cell.mcf" cp "$repo/models/ur5e_cell.mcf" "$work/ur5e_cell.mcf"
        for seed in $UR5E_FAULTS; do evaluate ur5e_cell.mcf ur5e_faults_s$seed report_ur5e_faults_s$seed; done ;;
    yumi_score)
        for seed in $YUMI_FAULTS; do evaluate yumi_cell.mcf yumi_faults_s$seed report_yumi_faults_s$seed; done ;;
    yumi_normal)
        for seed in $YUMI_NORMAL; do
            sim yumi_normal_s$seed --cell yumi --duration $YUMI_NORMAL_S --seed $seed
            evaluate yumi_cell.mcf yumi_normal_s$seed report_yumi_normal_s$seed
        done ;;
    ur5e_normal)
        for seed in $UR5E_NORMAL; do
            sim ur5e_normal_s$seed --duration $UR5E_NORMAL_S --seed $seed
            evaluate ur5e_cell.mcf ur5e_normal_s$seed report_ur5e_normal_s$seed
        done ;;
    sweep)
        sim yumi_sweep_s$YUMI_SWEEP --cell yumi --duration 320 --seed $YUMI_SWEEP
        step "$work/sweep_yumi" python -m mcf_ros.eval_faults.sweep --model "$work/yumi_cell.mcf" \
            --bag "$work/yumi_sweep_s$YUMI_SWEEP" --out "$work/sweep_yumi" --episodes 5 --seed $((YUMI_SWEEP + 1)) ;;
    yumi_baselines)
        # The baselines retrain on each model's training bags, at the paths its artifact records.
        for seed in $YUMI_FAULTS; do
            evaluate yumi_cell.mcf yumi_faults_s$seed baselines_yumi_faults_s$seed --baselines
        done ;;
    ur5e_baselines)
        # The shipped model's training bag is /work/data/train_normal_1200 (seed 100, 1200 s).
        step /work/data/train_normal_1200 mcf sim --out /work/data/train_normal_1200 --duration 1200 --seed 100
        for seed in $UR5E_FAULTS; do
            evaluate ur5e_cell.mcf ur5e_faults_s$seed baselines_ur5e_faults_s$seed --baselines
        done ;;
    table)
        for cell in ur5e yumi; do
            compgen -G "$work/report_${cell}_normal_s*[0-9]" > /dev/null || continue  # a cell this release left alone
            echo "## $cell"
            faults=$(compgen -G "$work/baselines_${cell}_faults_s*[0-9]" || compgen -G "$work/report_${cell}_faults_s*[0-9]")
            python -m mcf_ros.model.summary $faults "$work"/report_${cell}_normal_s*[0-9]
        done ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
    esac
done
