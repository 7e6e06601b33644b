# Every container drops all capabilities. Same meaning as `enclave check` K8S037: some entry of
# `capabilities.drop` names ALL (Checkov's reading: it contains `ALL` or `all`).
package enclavedropall

drops_all(c) if {
	capabilities := data.lib.enclave.setting(c, "capabilities")
	is_object(capabilities)
	drop := object.get(capabilities, "drop", null)
	data.lib.enclave.truthy(drop)
	is_array(drop)
	some entry in drop
	is_string(entry)
	some word in ["ALL", "all"]
	contains(entry, word)
}

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some c in data.lib.enclave.containers(spec)
	not drops_all(c)
	msg := sprintf("container %v: drop ALL capabilities", [data.lib.enclave.name(c)])
}
