# Pods mount no directory of the node (`hostPath` volumes). With `paths` in the parameters, only
# those paths are refused: `paths: [/var/run/docker.sock]` is `enclave check` K8S027.
package enclavenohostpath

refused(path) if count(object.get(input.parameters, "paths", [])) == 0

refused(path) if path in object.get(input.parameters, "paths", [])

violation contains {"msg": msg} if {
	spec := data.lib.enclave.pod_spec(input.review.object)
	volumes := data.lib.enclave.get(spec, "volumes")
	is_array(volumes)
	some volume in volumes
	host := data.lib.enclave.get(volume, "hostPath")
	data.lib.enclave.truthy(host)
	refused(data.lib.enclave.get(host, "path"))
	msg := sprintf("volume %v mounts a directory of the node", [data.lib.enclave.get(volume, "name")])
}
