# Objects carry the labels the parameters name (`labels: [app.kubernetes.io/name, ...]`), each
# with a non-empty value. No `enclave check` rule has this meaning.
package enclaverequiredlabels

violation contains {"msg": msg} if {
	labels := data.lib.enclave.get(data.lib.enclave.get(input.review.object, "metadata"), "labels")
	some key in object.get(input.parameters, "labels", [])
	value := data.lib.enclave.get(labels, key)
	not data.lib.enclave.truthy(value)
	msg := sprintf("label %v is missing", [key])
}
