package kubernetes

import (
	corev1 "k8s.io/api/core/v1"
)

// ContainerRef is one container of a pod with where it sits.
type ContainerRef struct {
	// Type is "initContainer", "container" or "ephemeralContainer".
	Type string
	// Path is the container's field path ("spec.containers[0]").
	Path string
	C    *corev1.Container
}

// Containers lists every container of the pod, init and ephemeral ones
// included, in the order the PSS checks visit them.
func (p *PodTemplate) Containers() []ContainerRef {
	s := &p.Spec
	out := make([]ContainerRef, 0, len(s.InitContainers)+len(s.Containers)+len(s.EphemeralContainers))
	for i := range s.InitContainers {
		out = append(out, ContainerRef{"initContainer", Index(p.SpecPath+".initContainers", i), &s.InitContainers[i]})
	}
	for i := range s.Containers {
		out = append(out, ContainerRef{"container", Index(p.SpecPath+".containers", i), &s.Containers[i]})
	}
	for i := range s.EphemeralContainers {
		out = append(out, ContainerRef{"ephemeralContainer", Index(p.SpecPath+".ephemeralContainers", i),
			(*corev1.Container)(&s.EphemeralContainers[i].EphemeralContainerCommon)})
	}
	return out
}

// EffectiveSecurityContext merges the pod's security context into a
// container's the way the kubelet does
// (pkg/securitycontext.DetermineEffectiveSecurityContext): the container's
// own field wins, the pod's fills in runAsUser, runAsGroup, runAsNonRoot,
// seLinuxOptions, seccompProfile, appArmorProfile and windowsOptions. The
// fields that exist only per container (privileged, capabilities,
// allowPrivilegeEscalation, readOnlyRootFilesystem, procMount) are the
// container's. The result is a copy; neither input is changed.
func EffectiveSecurityContext(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) *corev1.SecurityContext {
	eff := &corev1.SecurityContext{}
	if c != nil {
		*eff = *c.DeepCopy()
	}
	if pod == nil {
		return eff
	}
	pod = pod.DeepCopy()
	if eff.SELinuxOptions == nil {
		eff.SELinuxOptions = pod.SELinuxOptions
	}
	if eff.WindowsOptions == nil {
		eff.WindowsOptions = pod.WindowsOptions
	} else if pod.WindowsOptions != nil {
		// the kubelet merges windowsOptions field by field
		if eff.WindowsOptions.GMSACredentialSpecName == nil {
			eff.WindowsOptions.GMSACredentialSpecName = pod.WindowsOptions.GMSACredentialSpecName
		}
		if eff.WindowsOptions.GMSACredentialSpec == nil {
			eff.WindowsOptions.GMSACredentialSpec = pod.WindowsOptions.GMSACredentialSpec
		}
		if eff.WindowsOptions.RunAsUserName == nil {
			eff.WindowsOptions.RunAsUserName = pod.WindowsOptions.RunAsUserName
		}
		if eff.WindowsOptions.HostProcess == nil {
			eff.WindowsOptions.HostProcess = pod.WindowsOptions.HostProcess
		}
	}
	if eff.RunAsUser == nil {
		eff.RunAsUser = pod.RunAsUser
	}
	if eff.RunAsGroup == nil {
		eff.RunAsGroup = pod.RunAsGroup
	}
	if eff.RunAsNonRoot == nil {
		eff.RunAsNonRoot = pod.RunAsNonRoot
	}
	if eff.SeccompProfile == nil {
		eff.SeccompProfile = pod.SeccompProfile
	}
	if eff.AppArmorProfile == nil {
		eff.AppArmorProfile = pod.AppArmorProfile
	}
	return eff
}
