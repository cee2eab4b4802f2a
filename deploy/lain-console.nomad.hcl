# lain-console on the Nomad it drives: three replicas on one PostgreSQL database.
#
#   nomad var put nomad/jobs/lain-console database_url='postgresql+asyncpg://lain:…@db.internal:5432/lain_console' \
#                                         nomad_token='…'
#   nomad job run deploy/lain-console.nomad.hcl
#
# Any replica answers any request (GraphQL, websockets, /api/v1): put the service behind
# the load balancer you already have (Fabio, Traefik, Consul ingress…) with no sticky
# sessions. One replica at a time leads (a PostgreSQL advisory lock): it consumes Nomad's
# event stream into the event log and runs the reconciler; when it dies another takes over
# within LAIN_CONSOLE_LEADER_TAKEOVER_SECONDS.

job "lain-console" {
  type = "service"

  group "console" {
    count = 3

    # Never two replicas on one machine: a machine lost must leave two running.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    update {
      max_parallel     = 1
      health_check     = "checks"
      min_healthy_time = "10s"
      healthy_deadline = "3m"
      auto_revert      = true
    }

    network {
      port "http" {
        to = 8000
      }
    }

    service {
      name     = "lain-console"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "3s"
      }
    }

    task "serve" {
      driver = "docker"

      config {
        image = "registry.lain.local/lain-console:latest"
        ports = ["http"]
      }

      template {
        destination = "secrets/console.env"
        env         = true
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/lain-console" }}
          LAIN_CONSOLE_DATABASE_URL={{ .database_url }}
          NOMAD_TOKEN={{ .nomad_token }}
          {{ end }}
        EOT
      }

      env {
        LAIN_CONSOLE_BACKEND                 = "nomad"
        LAIN_CONSOLE_AUTH                    = "true"
        LAIN_CONSOLE_LEADER_TAKEOVER_SECONDS = "10"
        NOMAD_ADDR                           = "https://nomad.service.consul:4646"
        NOMAD_CACERT                         = "/local/nomad-ca.pem"
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
