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

{{/*
The pod of the archive and restore Jobs: coursehub_archive.py from its ConfigMap,
every home directory at /homes, the archive volume at /archive. Takes (list $ args).
*/}}
{{- define "coursehub.archivePod" -}}
{{- $root := index . 0 -}}
{{- $args := index . 1 -}}
restartPolicy: Never
securityContext:
  runAsUser: 1000
  runAsGroup: 100
  fsGroup: 100
containers:
  - name: archive
    image: {{ printf "%s:%s" $root.Values.archive.image.name $root.Values.archive.image.tag | quote }}
    command: ["python", "/opt/coursehub/coursehub_archive.py"]
    args:
      {{- toYaml $args | nindent 6 }}
    volumeMounts:
      - {name: code, mountPath: /opt/coursehub, readOnly: true}
      - {name: homes, mountPath: /homes}
      - {name: archive, mountPath: /archive}
volumes:
  - name: code
    configMap: {name: coursehub-archive}
  - name: homes
    persistentVolumeClaim: {claimName: {{ $root.Values.archive.homesClaim | quote }}}
  - name: archive
    persistentVolumeClaim: {claimName: {{ $root.Values.archive.volumeClaim | quote }}}
{{- end }}

{{/* The archive command for every shared account of the course. */}}
{{- define "coursehub.archiveArgs" -}}
{{- $args := list "archive" "--homes" "/homes" "--dest" "/archive" -}}
{{- range .Values.jupyterhub.custom.coursehub.sharedAccounts -}}
{{- $args = append $args .account -}}
{{- end -}}
{{- toJson $args -}}
{{- end }}
