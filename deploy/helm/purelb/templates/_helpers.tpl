{{/*
Labels. Selector labels never change (a Deployment's selector is immutable); pod templates carry
the selector labels and part-of, exactly as deploy/*.yaml; object metadata adds Helm's two.
*/}}
{{- define "purelb.selectorLabels" -}}
app.kubernetes.io/name: purelb
app.kubernetes.io/component: {{ . }}
{{- end }}

{{- define "purelb.podLabels" -}}
{{ include "purelb.selectorLabels" . }}
app.kubernetes.io/part-of: purelb
{{- end }}

{{- define "purelb.helmLabels" -}}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object labels of a component: (dict "context" $ "component" "allocator") */}}
{{- define "purelb.labels" -}}
{{ include "purelb.podLabels" .component }}
{{ include "purelb.helmLabels" .context }}
{{- end }}

{{/* image reference: (dict "context" $ "image" .Values.x.image) */}}
{{- define "purelb.image" -}}
{{ .image.repository }}:{{ .image.tag | default .context.Chart.AppVersion }}
{{- end }}

{{/* The bird container's image: bgp.bird.image, by default the lbnodeagent image (it carries BIRD). */}}
{{- define "purelb.birdImage" -}}
{{- $agent := .Values.lbnodeagent.image }}
{{- $bird := .Values.bgp.bird.image }}
{{- $repository := $bird.repository | default $agent.repository }}
{{- $tag := $bird.tag | default (ternary $agent.tag "" (empty $bird.repository)) | default .Chart.AppVersion }}
{{- printf "%s:%v" $repository $tag }}
{{- end }}

{{/*
Renders the YAML documents of a file under files/ (symbolic links to deploy/, so the chart and
kustomize share one source) moved to the release namespace: metadata.namespace of namespaced
objects, ServiceAccount subjects of bindings, and the name of a Namespace. Adds Helm's labels.
Argument: (dict "context" $ "path" "files/rbac/allocator.yaml")
*/}}
{{- define "purelb.fromFile" -}}
{{- $ctx := .context }}
{{- $path := .path }}
{{- range $doc := regexSplit "(?m)^---[ \\t]*$" ($ctx.Files.Get $path) -1 }}
{{- $obj := fromYaml $doc }}
{{- if hasKey $obj "Error" }}
{{- fail (printf "%s: %s" $path $obj.Error) }}
{{- end }}
{{- if $obj.kind }}
{{- $meta := $obj.metadata }}
{{- if eq $obj.kind "Namespace" }}
{{- $_ := set $meta "name" $ctx.Release.Namespace }}
{{- else if hasKey $meta "namespace" }}
{{- $_ := set $meta "namespace" $ctx.Release.Namespace }}
{{- end }}
{{- range $subject := $obj.subjects }}
{{- if eq $subject.kind "ServiceAccount" }}
{{- $_ := set $subject "namespace" $ctx.Release.Namespace }}
{{- end }}
{{- end }}
{{- $_ := set $meta "labels" (merge (fromYaml (include "purelb.helmLabels" $ctx)) ($meta.labels | default dict)) }}
---
# Source: {{ $ctx.Chart.Name }}/{{ $path }}
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- end }}
