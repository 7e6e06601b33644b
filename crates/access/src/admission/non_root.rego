# Pods run as a non-root user: every container has `runAsNonRoot: true` or a `runAsUser` of 1 or
# more, its own or the pod's (a container's own setting wins). Same meaning as `enclave check`
# K8S023 (Checkov CKV_K8S_23): main containers only, a pod without a spec fails.
package enclavenonroot

spec := data.lib.enclave.pod_spec(input.review.object)

has(n, key) if {
	is_object(n)
	data.lib.enclave.truthy(object.get(n, "securityContext", null))
	is_object(n.securityContext)
	key in object.keys(n.securityContext)
}

non_root(n) := "passed" if {
	has(n, "runAsNonRoot")
	data.lib.enclave.truthy(n.securityContext.runAsNonRoot)
}

non_root(n) := "failed" if {
	has(n, "runAsNonRoot")
	not data.lib.enclave.truthy(n.securityContext.runAsNonRoot)
}

non_root(n) := "absent" if not has(n, "runAsNonRoot")

user_ok(n) if {
	user := n.securityContext.runAsUser
	is_number(user)
	user >= 1
	floor(user) == user
}

user_ok(n) if n.securityContext.runAsUser == true

user(n) := "passed" if {
	has(n, "runAsUser")
	user_ok(n)
}

user(n) := "failed" if {
	has(n, "runAsUser")
	not user_ok(n)
}

user(n) := "absent" if not has(n, "runAsUser")

runs_as_root(c) if {
	non_root(spec) == "passed"
	non_root(c) == "failed"
	user(c) != "passed"
}

runs_as_root(c) if {
	non_root(spec) != "passed"
	user(spec) == "passed"
	user(c) == "failed"
}

runs_as_root(c) if {
	non_root(spec) != "passed"
	user(spec) != "passed"
	non_root(c) != "passed"
	user(c) != "passed"
}

violation contains {"msg": "the pod has no spec, so nothing says it runs as non-root"} if {
	not data.lib.enclave.truthy(spec)
}

violation contains {"msg": msg} if {
	data.lib.enclave.truthy(spec)
	is_object(spec)
	containers := object.get(spec, "containers", [])
	is_array(containers)
	some c in containers
	runs_as_root(c)
	msg := sprintf("container %v may run as root: set runAsNonRoot: true or a runAsUser of 1 or more", [data.lib.enclave.name(c)])
}
