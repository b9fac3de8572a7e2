package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// dashboard is the part of a Grafana dashboard JSON the renderer draws.
type dashboard struct {
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	GridPos     gridPos  `json:"gridPos"`
	Targets     []target `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Options struct {
		TextMode string `json:"textMode"`
	} `json:"options"`
}

type gridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

type target struct {
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
}

// unit is the panel's unit, "short" when the dashboard sets none.
func (p panel) unit() string {
	if p.FieldConfig.Defaults.Unit == "" {
		return "short"
	}
	return p.FieldConfig.Defaults.Unit
}

func loadDashboard(path string) (dashboard, error) {
	var d dashboard
	b, err := os.ReadFile(path)
	if err != nil {
		return d, fmt.Errorf("read dashboard: %w", err)
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("parse dashboard %s: %w", path, err)
	}
	return d, nil
}
