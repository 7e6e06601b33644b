# Every image names a version: a digest, or a tag other than `latest` (an image without a tag is
# `latest`). Same meaning as `enclave check` K8S014, Checkov's parsing included: the tag is what
# follows the first `:` after the first `/`-separated segment (so `host:5000/app` has none).
package enclavenolatest

rest(image) := concat("/", array.slice(parts, 1, count(parts))) if {
	parts := split(image, "/")
	count(parts) > 1
}

rest(image) := image if not contains(image, "/")

tag(image) := substring(r, i + 1, (count(r) - i) - 1) if {
	r := rest(image)
	i := indexof(r, ":")
	i >= 0
}

tag(image) := "" if indexof(rest(image), ":") < 0

unversioned(image) if {
	is_string(image)
	trim_space(image) != ""
	not contains(image, "@")
	tag(image) in {"", "latest"}
}

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some c in data.lib.enclave.containers(spec)
	image := data.lib.enclave.get(c, "image")
	not data.lib.enclave.truthy(image)
	msg := sprintf("container %v has no image", [data.lib.enclave.name(c)])
}

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	some c in data.lib.enclave.containers(spec)
	unversioned(data.lib.enclave.get(c, "image"))
	msg := sprintf("container %v: pin the image by a tag other than latest or by a digest", [data.lib.enclave.name(c)])
}
