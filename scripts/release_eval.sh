#!/usr/bin/env bash
# The release evaluation of the protocol (docs/evaluation.md): both cells, the evaluation faults of
# `mcf inject`, >= 2 h of normal running per cell, the drift sweeps and the baselines, on seeds made
# for the release, with a model of each cell that `mcf train` makes with its defaults.
#   scripts/release_eval.sh WORKDIR [STAGE ...]
# Stages, in the default order: model faults score normal sweep baselines table; each does both
# cells, ur5e_model, yumi_faults and so on one.
# A finished step leaves STEP.done beside its output and is skipped next time, so an interrupted run
# continues where it stopped. A step in progress leaves STEP.claim: a second shell waits for it, or
# in the fault and normal stages takes the next bag, so two shells can share the work
# (yumi_normal ur5e_normal in one, ur5e_normal in the other, say).
# The UR5e's 2 h of normal running is most of the work (its simulator renders 30 frames/s in
# software, 1.2-2x real time on 2 cores), so it comes in 15 min pieces: a run cut short loses one
# piece at most.
set -euo pipefail
work=$(realpath -m "${1:?usage: $0 WORKDIR [STAGE ...]}"); shift
stages=${*:-model faults score normal sweep baselines table}
mkdir -p "$work"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOG_DIR="$work/ros_log"

# The seeds of this release; a release after another choice of the detector takes new ones.
# Release 7 took 1403-1422 for the UR5e; round 12 left the YuMi's training as it was, so its seeds
# are still release 6's (1300-1314). Release 5 took 1200-1213, release 4 1100-1113 for the YuMi,
# release 3 1000-1020, release 2's script: git show 8cc1900:scripts/release_eval.sh
UR5E_TRAIN=100 YUMI_TRAIN=1300  # the UR5e trains on the shipped model's recording (models/README.md)
YUMI_NORMAL="1301 1302" YUMI_FAULTS="1309 1311" YUMI_SWEEP=1313
# Half the UR5e's normal running is operator-paced (irregular waits, a lowered speed override for a while).
UR5E_NORMAL="1403 1404 1415 1416" UR5E_OPERATOR="1417 1418 1419 1420" UR5E_FAULTS="1405 1407" UR5E_SWEEP=1421
YUMI_NORMAL_S=3600 UR5E_NORMAL_S=900
UR5E_PHYSICAL=collision,heavy_payload,dropped_payload,slow_motion,joint_brake,foreign_object,wrong_waypoint
YUMI_PHYSICAL=collision,heavy_payload,slow_motion,joint_brake,foreign_object,wrong_waypoint

seeds() {  # CELL KIND: the seeds of UR5E_KIND or YUMI_KIND
    local name=${1^^}_$2
    echo "${!name}"
}
step() {  # OUTPUT COMMAND...: run COMMAND unless OUTPUT.done says it finished or another shell runs it
    [ -e "$1.done" ] && return 0
    until mkdir "$1.claim" 2> /dev/null; do  # another shell makes it: wait, and take over if it failed
        echo "$(date +%T) waiting for another shell to finish $1 (or remove $1.claim if none runs it)" >&2
        while [ -e "$1.claim" ]; do sleep 10; done
        [ -e "$1.done" ] && return 0
    done
    claim=$1.claim
    echo "$(date +%T) ${*:2}" >&2
    rm -rf "$1"
    "${@:2}"
    touch "$1.done"
    rmdir "$claim" && claim=
}
claim=
trap '[ -z "$claim" ] || rmdir "$claim"' EXIT
taken() {  # STEP...: another shell runs one of these steps, which come as one piece of work
    local name
    for name in "$@"; do [ -e "$work/$name.claim" ] && return 0; done
    return 1
}
made() {  # OUTPUT: wait while another shell makes it (a model or a bag)
    while taken "$1"; do sleep 10; done
}
sim() { step "$work/$1" mcf sim --out "$work/$1" "${@:2}"; }
evaluate() {  # MODEL BAG REPORT [--baselines]
    made "$1" && made "$2"
    step "$work/$3" mcf eval --model "$work/$1" --bag "$work/$2" --report "$work/$3" "${@:4}"
}
fault_bags() {  # CELL PHYSICAL DURATION SEED...
    local cell=$1 physical=$2 duration=$3 seed; shift 3
    for seed in "$@"; do
        taken "${cell}_physical_s$seed" "${cell}_faults_s$seed" && continue
        sim "${cell}_physical_s$seed" --cell "$cell" --duration "$duration" --seed "$seed" --faults "$physical"
        step "$work/${cell}_faults_s$seed" mcf inject "$work/${cell}_physical_s$seed" \
            --out "$work/${cell}_faults_s$seed" --seed $((seed + 1))
    done
}

expanded=()
for stage in $stages; do
    case $stage in
    model | faults | score | normal | sweep | baselines) expanded+=("ur5e_$stage" "yumi_$stage") ;;
    *) expanded+=("$stage") ;;
    esac
done
for stage in "${expanded[@]}"; do
    case $stage in
    ur5e_model | yumi_model)
        cell=${stage%_model} && seed=$(seeds "$cell" TRAIN)
        sim ${cell}_train_s$seed --cell "$cell" --duration 1200 --seed "$seed"
        step "$work/${cell}_cell.mcf" mcf train --bag "$work/${cell}_train_s$seed" --out "$work/${cell}_cell.mcf" ;;
    ur5e_faults) fault_bags ur5e $UR5E_PHYSICAL 340 $UR5E_FAULTS ;;
    yumi_faults) fault_bags yumi $YUMI_PHYSICAL 300 $YUMI_FAULTS ;;
    ur5e_score | yumi_score)
        cell=${stage%_score}
        for seed in $(seeds "$cell" FAULTS); do evaluate ${cell}_cell.mcf ${cell}_faults_s$seed report_${cell}_faults_s$seed; done ;;
    ur5e_normal | yumi_normal)
        cell=${stage%_normal}
        if [ "$cell" = ur5e ]; then
            runs=$(printf '%s:takt ' $UR5E_NORMAL; printf '%s:operator ' $UR5E_OPERATOR) duration=$UR5E_NORMAL_S
        else
            runs=$(printf '%s:operator ' $YUMI_NORMAL) duration=$YUMI_NORMAL_S  # the YuMi's default pacing
        fi
        for run in $runs; do
            seed=${run%:*}
            taken ${cell}_normal_s$seed report_${cell}_normal_s$seed && continue
            sim ${cell}_normal_s$seed --cell "$cell" --duration "$duration" --seed "$seed" --pacing "${run#*:}"
            evaluate ${cell}_cell.mcf ${cell}_normal_s$seed report_${cell}_normal_s$seed
        done ;;
    ur5e_sweep | yumi_sweep)
        cell=${stage%_sweep} && seed=$(seeds "$cell" SWEEP)
        sim ${cell}_sweep_s$seed --cell "$cell" --duration 320 --seed "$seed"
        made ${cell}_cell.mcf
        step "$work/sweep_$cell" python -m mcf_ros.eval_faults.sweep --model "$work/${cell}_cell.mcf" \
            --bag "$work/${cell}_sweep_s$seed" --out "$work/sweep_$cell" --episodes 5 --seed $((seed + 1)) ;;
    ur5e_baselines | yumi_baselines)
        # The baselines retrain on the cell model's training bag, at the path its artifact records.
        cell=${stage%_baselines}
        for seed in $(seeds "$cell" FAULTS); do
            evaluate ${cell}_cell.mcf ${cell}_faults_s$seed baselines_${cell}_faults_s$seed --baselines
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
