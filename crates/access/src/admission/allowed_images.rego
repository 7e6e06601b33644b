# Containers run only images of the stack's registries (`repos`: each a registry host with a
# trailing `/`, or a repository prefix). No `enclave check` rule has this meaning (it cannot know
# the registry); `enclave check`'s spec-side guardrail DEP005 does.
package enclaveallowedimages

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some c in data.lib.enclave.containers(spec)
	image := data.lib.enclave.get(c, "image")
	not allowed(image)
	msg := sprintf("container %v: image from outside the stack's registries", [data.lib.enclave.name(c)])
}

allowed(image) if {
	is_string(image)
	some prefix in object.get(input.parameters, "repos", [])
	startswith(image, prefix)
}
