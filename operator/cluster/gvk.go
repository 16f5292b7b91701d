package cluster

import "k8s.io/apimachinery/pkg/runtime/schema"

func schemaGVK(kind string) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(APIVersion(kind), kind)
}
