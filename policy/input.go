package policy

import (
	"fmt"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/diag"
)

// InputFor is the input that judges a workload, for the gate and the
// webhook alike: the object, the images of all its containers (init,
// ephemeral and app containers, in that order), the namespace it runs in
// and the policy's admission.maxImages. The namespace is the object's own
// (metadata.namespace); when it names none, namespace (the admission
// request's, or the gate's --namespace). A namespace of
// admission.exemptNamespaces is not judged: Evaluate allows it and says
// why (Decision.Exempt).
func (f *File) InputFor(obj *kubernetes.Object, namespace string) Input {
	in := Input{Namespace: namespace, Object: obj, MaxImages: f.Admission.MaxImages}
	if obj == nil {
		return in
	}
	if obj.Meta.Namespace != "" {
		in.Namespace = obj.Meta.Namespace
	}
	if obj.Pod != nil {
		for _, c := range obj.Pod.Containers() {
			in.Images = append(in.Images, c.C.Image)
		}
	}
	return in
}

// ImageInput is the input that judges bare images (the gate's image
// arguments) bound for namespace ("": unknown, every namespace-scoped
// rule applies and no namespace is exempt).
func (f *File) ImageInput(namespace string, images ...string) Input {
	return Input{Namespace: namespace, Images: images, MaxImages: f.Admission.MaxImages}
}

// Exempt says why namespace ns is not judged ("" when it is):
// admission.exemptNamespaces names it. An unknown namespace ("") is never
// exempt: the workload may go anywhere.
func (f *File) Exempt(ns string) string {
	if ns == "" {
		return ""
	}
	for _, g := range f.Admission.ExemptNamespaces {
		if ok, _ := matchName(g, ns); ok {
			return fmt.Sprintf("namespace %s is exempt (admission.exemptNamespaces: %s): not judged", diag.Shorten(ns, MaxEcho), g)
		}
	}
	return ""
}
