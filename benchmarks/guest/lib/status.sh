# shellcheck shell=sh
# The status of a run: the highest-ranked failure in the one status table ($KIT_DIR/statuses,
# first line highest), and every failure in the order it happened ($RUN_DIR/failures, TSV:
# status, phase, unix time, error). The table is read here, by components/results.py, and
# checked against the result schema by tests/unit/test_statuses.py.
STATUS=""

# status_rank STATUS: its position in the table (1 is the highest); fails for a status not in it.
status_rank() {
  _sr_n=0
  while IFS= read -r _sr_line; do
    case "$_sr_line" in '' | \#*) continue ;; esac
    _sr_n=$((_sr_n + 1))
    if [ "$_sr_line" = "$1" ]; then echo "$_sr_n"; return 0; fi
  done < "$KIT_DIR/statuses"
  return 1
}

# rank_status STATUS: make STATUS the run's status when it ranks above the current one.
rank_status() {
  _rs_new=$(status_rank "$1") || die "kit bug: '$1' is not a status in $KIT_DIR/statuses"
  if [ -z "$STATUS" ] || [ "$_rs_new" -lt "$(status_rank "$STATUS")" ]; then STATUS=$1; fi
}

# fail STATUS PHASE ERROR [AT]: record a failure (errors list, failures list, status).
fail() {
  rank_status "$1"
  note_error "$3"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "${4:-$(now_s)}" "$(printf '%s' "$3" | tr '\t\n' '  ')" >> "$RUN_DIR/failures"
}

# failures_json FILE: the failures as a JSON array.
failures_json() {
  printf '['
  _fj_sep=""
  if [ -s "$1" ]; then
    while IFS="$(printf '\t')" read -r _fj_status _fj_phase _fj_at _fj_error; do
      printf '%s{"status":%s,"phase":%s,"at":%s,"error":%s}' "$_fj_sep" "$(json_str "$_fj_status")" \
        "$(json_str "$_fj_phase")" "$(json_num "$_fj_at")" "$(json_str "$_fj_error")"
      _fj_sep=,
    done < "$1"
  fi
  printf ']'
}
