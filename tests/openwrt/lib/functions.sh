# Test stub of OpenWrt's /lib/functions.sh: the UCI part of its API
# (config_load, config_get, config_get_bool, config_foreach,
# config_list_foreach, config_set, append), same names, arguments and
# storage (CONFIG_<section>_<option>, <option>_ITEMn/_LENGTH for lists,
# anonymous sections named cfgN in order), in POSIX sh.
#
# config_load NAME reads $UCI_CONFIG_DIR/NAME (default /etc/config): a UCI
# file is `config TYPE ['NAME']`, `option KEY 'VALUE'` and `list KEY
# 'VALUE'` lines, so it is sourced with config/option/list defined, as
# uci_load does with `uci export`.

LIST_SEP=" "

append() {
	local var="$1" value="$2" sep="${3:- }"
	eval "$var=\"\${$var:+\${$var}\${value:+\$sep}}\$value\""
}

config_set() {
	eval "CONFIG_${1}_${2}=\$3"
}

config() {
	local cfgtype="$1" name="$2"
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	name="${name:-cfg$CONFIG_NUM_SECTIONS}"
	append CONFIG_SECTIONS "$name"
	CONFIG_SECTION="$name"
	config_set "$name" TYPE "$cfgtype"
}

option() {
	local varname="$1"
	shift
	config_set "$CONFIG_SECTION" "$varname" "$*"
}

list() {
	local varname="$1" len
	shift
	config_get len "$CONFIG_SECTION" "${varname}_LENGTH" 0
	len=$((len + 1))
	config_set "$CONFIG_SECTION" "${varname}_ITEM$len" "$*"
	config_set "$CONFIG_SECTION" "${varname}_LENGTH" "$len"
	append "CONFIG_${CONFIG_SECTION}_${varname}" "$*" "$LIST_SEP"
}

package() { return 0; }

config_load() {
	local s
	for s in $CONFIG_SECTIONS; do
		unset "CONFIG_${s}_TYPE"
	done
	CONFIG_SECTIONS=
	CONFIG_NUM_SECTIONS=0
	CONFIG_SECTION=
	. "${UCI_CONFIG_DIR:-/etc/config}/$1"
}

# config_get VAR SECTION OPTION [DEFAULT] | config_get SECTION OPTION
config_get() {
	case "$2${3:-$1}" in
	*[!A-Za-z0-9_]*) return 0 ;;
	esac
	if [ -z "$3" ]; then
		eval "echo \"\${CONFIG_${1}_${2}:-\${4}}\""
	else
		eval "$1=\${CONFIG_${2}_${3}:-\${4}}"
	fi
}

config_get_bool() {
	local _tmp
	config_get _tmp "$2" "$3" "$4"
	case "$_tmp" in
	1 | on | true | yes | enabled) _tmp=1 ;;
	0 | off | false | no | disabled) _tmp=0 ;;
	*) _tmp="$4" ;;
	esac
	eval "$1=\$_tmp"
}

config_foreach() {
	local ___function="$1" ___type="$2" section cfgtype
	[ "$#" -ge 2 ] && shift 2 || shift $#
	for section in $CONFIG_SECTIONS; do
		config_get cfgtype "$section" TYPE
		[ -n "$___type" ] && [ "$cfgtype" != "$___type" ] && continue
		"$___function" "$section" "$@"
	done
}

config_list_foreach() {
	[ "$#" -ge 3 ] || return 0
	local section="$1" option="$2" function="$3" val len c=1
	shift 3
	config_get len "$section" "${option}_LENGTH"
	[ -z "$len" ] && return 0
	while [ "$c" -le "$len" ]; do
		config_get val "$section" "${option}_ITEM$c"
		"$function" "$val" "$@"
		c=$((c + 1))
	done
}
