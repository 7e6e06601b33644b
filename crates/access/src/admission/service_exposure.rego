# No Service opens a port on every node (`NodePort`) or an internet-facing load balancer (a
# `LoadBalancer` without an internal-scheme annotation). Same meaning as `enclave check` K8S100;
# the ingress namespace is left out by the Constraint's `excludedNamespaces`.
package enclaveserviceexposure

internal := {
	"service.beta.kubernetes.io/aws-load-balancer-internal": "true",
	"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
	"networking.gke.io/load-balancer-type": "internal",
	"cloud.google.com/load-balancer-type": "internal",
	"service.beta.kubernetes.io/azure-load-balancer-internal": "true",
}

service_type := data.lib.enclave.get(data.lib.enclave.get(input.review.object, "spec"), "type")

annotations := data.lib.enclave.get(data.lib.enclave.get(input.review.object, "metadata"), "annotations")

is_internal if {
	some key, value in internal
	annotation := data.lib.enclave.get(annotations, key)
	is_string(annotation)
	lower(annotation) == value
}

violation contains {"msg": "a NodePort Service opens its port on every node"} if {
	input.review.object.kind == "Service"
	service_type == "NodePort"
}

violation contains {"msg": "a LoadBalancer Service without an internal scheme faces the internet"} if {
	input.review.object.kind == "Service"
	service_type == "LoadBalancer"
	not is_internal
}
