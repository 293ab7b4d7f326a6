{{/* Labels on every object: the kustomize install's, plus Helm's own. */}}
{{- define "modelops.labels" -}}
app.kubernetes.io/part-of: modelops
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "modelops.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}
