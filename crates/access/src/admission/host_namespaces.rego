# Pods share none of the node's namespaces the parameters name (`fields: [hostPID, hostIPC,
# hostNetwork]`). Same meaning as `enclave check` K8S017 (hostPID), K8S018 (hostIPC) and K8S019
# (hostNetwork).
package enclavehostnamespaces

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some field in object.get(input.parameters, "fields", [])
	data.lib.enclave.truthy(data.lib.enclave.get(spec, field))
	msg := sprintf("the pod sets %v", [field])
}
