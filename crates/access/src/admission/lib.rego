# Helpers shared by every enclave ConstraintTemplate (Gatekeeper `libs`). Templates call them by
# their full name (`data.lib.enclave.truthy(x)`), which Gatekeeper and regorus both resolve.
package lib.enclave

# A value counts as set the way `enclave check` (and Checkov) reads it: null, false, 0, "", []
# and {} are unset; anything else is set.
truthy(x) if x == true

truthy(x) if {
	is_number(x)
	x != 0
}

truthy(x) if {
	is_string(x)
	x != ""
}

truthy(x) if {
	is_array(x)
	count(x) > 0
}

truthy(x) if {
	is_object(x)
	count(x) > 0
}

# The kinds whose pods are described by `spec.template.spec`.
controllers := {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "ReplicationController", "Job", "DeploymentConfig"}

# The pod spec of a Pod, a PodTemplate, a pod controller or a CronJob; undefined otherwise.
pod_spec(obj) := obj.spec if obj.kind == "Pod"

pod_spec(obj) := obj.template.spec if obj.kind == "PodTemplate"

pod_spec(obj) := obj.spec.template.spec if controllers[obj.kind]

pod_spec(obj) := obj.spec.jobTemplate.spec.template.spec if obj.kind == "CronJob"

# The containers and init containers of a pod spec, each list only when it is a list. Ephemeral
# containers are added by `kubectl debug`, never by a workload, and are not checked.
containers(spec) := [c |
	some field in ["containers", "initContainers"]
	list := object.get(spec, field, [])
	is_array(list)
	some c in list
]

# A container's name for messages.
name(c) := object.get(c, "name", "(unnamed)") if is_object(c)

name(c) := "(not a mapping)" if not is_object(c)

# A field of a container's securityContext; null when the container, its securityContext or
# the field is missing.
setting(c, key) := value if {
	is_object(c)
	context := object.get(c, "securityContext", null)
	is_object(context)
	value := object.get(context, key, null)
} else := null

# `o[key]`, or null when `o` is not a mapping or has no such key.
get(o, key) := value if {
	is_object(o)
	value := object.get(o, key, null)
} else := null
