# Every container forbids privilege escalation (`allowPrivilegeEscalation: false`, which
# Kubernetes does not default). Same meaning as `enclave check` K8S020.
package enclavenoescalation

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some c in data.lib.enclave.containers(spec)
	data.lib.enclave.setting(c, "allowPrivilegeEscalation") != false
	msg := sprintf("container %v: set allowPrivilegeEscalation: false", [data.lib.enclave.name(c)])
}
