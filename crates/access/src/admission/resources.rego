# Every container sets the requests and limits the parameters name (`requests: [cpu, memory]`,
# `limits: [cpu, memory]`). Same meaning as `enclave check` K8S010 (cpu requests), K8S011 (cpu
# limits), K8S012 (memory requests) and K8S013 (memory limits), Checkov's reading included: a
# container with `resources` but no `requests` section gives no verdict on requests.
package enclaveresources

# A container fails when it has no resources at all.
fails(c, section, resource) if {
	not data.lib.enclave.truthy(data.lib.enclave.get(c, "resources"))
}

# With a section, the resource must be set in it.
fails(c, section, resource) if {
	values := data.lib.enclave.get(data.lib.enclave.get(c, "resources"), section)
	is_object(values)
	not data.lib.enclave.truthy(data.lib.enclave.get(values, resource))
}

# Without one, limits fail; requests cannot be decided.
fails(c, section, resource) if {
	section == "limits"
	resources := data.lib.enclave.get(c, "resources")
	data.lib.enclave.truthy(resources)
	is_object(resources)
	not is_object(data.lib.enclave.get(resources, section))
}

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some c in data.lib.enclave.containers(spec)
	some section in ["requests", "limits"]
	some resource in object.get(input.parameters, section, [])
	fails(c, section, resource)
	msg := sprintf("container %v: set %v %v", [data.lib.enclave.name(c), resource, section])
}
