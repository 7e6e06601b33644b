# Containers have a read-only root filesystem. Same meaning as `enclave check` K8S022.
package enclavereadonlyroot

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some c in data.lib.enclave.containers(spec)
	not data.lib.enclave.truthy(data.lib.enclave.setting(c, "readOnlyRootFilesystem"))
	msg := sprintf("container %v: set readOnlyRootFilesystem: true", [data.lib.enclave.name(c)])
}
