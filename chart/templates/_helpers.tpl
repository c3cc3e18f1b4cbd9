{{/*
Labels on every object coursehub itself renders (the z2jh dependency labels its own).
*/}}
{{- define "coursehub.labels" -}}
app.kubernetes.io/name: coursehub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
coursehub.jupyter.org/course: {{ .Values.jupyterhub.custom.coursehub.course | quote }}
{{- end }}
