# No container is privileged. Same meaning as `enclave check` K8S016.
package enclavenoprivileged

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some c in data.lib.enclave.containers(spec)
	data.lib.enclave.truthy(data.lib.enclave.setting(c, "privileged"))
	msg := sprintf("container %v is privileged", [data.lib.enclave.name(c)])
}
